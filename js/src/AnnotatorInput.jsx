import { React, useTriggerPanelEvent } from "./globals.js";

const { useEffect, useRef, useState } = React;

export const STORAGE_KEY = "interactive-naming:annotator";

// Who is naming: typed, or picked from those who already named maps. The
// name the panel accepted is remembered by this browser and sent again when
// the panel opens with nobody chosen.
export default function AnnotatorInput(props) {
  const view = (props.schema && props.schema.view) || {};
  const accepted = view.annotator || "";
  const triggerPanelEvent = useTriggerPanelEvent();
  const [text, setText] = useState(accepted);
  const restored = useRef(false);

  const submit = (value) => {
    if (view.on_change) triggerPanelEvent(view.on_change, { value });
  };

  useEffect(() => {
    if (accepted) {
      window.localStorage.setItem(STORAGE_KEY, accepted);
      setText(accepted);
    } else if (!restored.current) {
      const remembered = window.localStorage.getItem(STORAGE_KEY);
      if (remembered) {
        setText(remembered);
        submit(remembered);
      }
    }
    restored.current = true;
  }, [accepted]);

  return (
    <label style={{ display: "flex", flexDirection: "column", gap: 2, fontSize: 14 }}>
      <span>Annotator</span>
      <input
        data-testid="annotator-input"
        list="interactive-naming-annotators"
        value={text}
        placeholder="who is naming"
        onChange={(event) => setText(event.target.value)}
        onBlur={() => text.trim() !== accepted && submit(text)}
        onKeyDown={(event) => event.key === "Enter" && submit(text)}
        style={{ font: "inherit", padding: "6px 8px", minWidth: 180, color: "inherit",
                 background: "transparent", border: "1px solid rgba(128,128,128,0.6)", borderRadius: 4 }}
      />
      <datalist id="interactive-naming-annotators">
        {(view.annotators || []).map((name) => <option key={name} value={name} />)}
      </datalist>
    </label>
  );
}
