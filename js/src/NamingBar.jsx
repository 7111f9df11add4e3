import { React, useTriggerPanelEvent } from "./globals.js";

const { useEffect, useRef, useState } = React;

// Type a concept name and press Enter (or the button) to name the selected
// maps. The field takes the focus when a new selection arrives, so naming
// runs lasso, type, Enter, lasso, ... without the mouse leaving the plot for
// long. It empties itself after a naming succeeded, not after a refused name.
// what was typed, by panel path: the panel may re-mount this component
// (e.g. when a message appears above it) and a refused name must survive
const drafts = new Map();

export default function NamingBar(props) {
  const view = (props.schema && props.schema.view) || {};
  const triggerPanelEvent = useTriggerPanelEvent();
  const key = props.path || "name_bar";
  const draft = drafts.get(key) || { text: "", namings: view.namings };
  const [text, setTextState] = useState(draft.text);
  const input = useRef(null);

  const setText = (value, namings = view.namings) => {
    drafts.set(key, { text: value, namings });
    setTextState(value);
  };

  // a naming succeeded since this text was typed: start afresh
  useEffect(() => {
    if (draft.namings !== view.namings) setText("", view.namings);
  }, [view.namings]);
  useEffect(() => {
    // without scrolling: the user is looking at the plot
    if (view.selected && input.current) input.current.focus({ preventScroll: true });
  }, [view.selection_key]);

  const submit = () => {
    if (view.on_name) triggerPanelEvent(view.on_name, { concept: text });
  };

  return (
    <div style={{ display: "flex", alignItems: "flex-end", gap: 8 }}>
      <label style={{ display: "flex", flexDirection: "column", gap: 2, fontSize: 14 }}>
        <span>New concept</span>
        <input
          ref={input}
          data-testid="new-concept-input"
          value={text}
          placeholder="name, then Enter"
          onChange={(event) => setText(event.target.value)}
          onKeyDown={(event) => event.key === "Enter" && submit()}
          style={{ font: "inherit", padding: "6px 8px", minWidth: 160, color: "inherit",
                   background: "transparent", border: "1px solid rgba(128,128,128,0.6)", borderRadius: 4 }}
        />
      </label>
      <button
        data-testid="name-selection"
        onClick={submit}
        style={{ font: "inherit", padding: "7px 14px", borderRadius: 4, border: "none", cursor: "pointer",
                 background: "#ff6d04", color: "#fff", whiteSpace: "nowrap" }}
      >
        Name selection
      </button>
    </div>
  );
}
