// The FiftyOne App exposes React and its plugin packages as globals; the
// bundle uses those (no copy of React or of FiftyOne's code inside it).
export const React = window.React;
export const { registerComponent, PluginComponentType } = window.__fop__;
export const { useTriggerPanelEvent } = window.__foo__;
