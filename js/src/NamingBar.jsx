import { React, useTriggerPanelEvent } from "./globals.js";

const { useEffect, useRef, useState } = React;

// Type a concept name and press Enter (or the button) to name the selected
// maps. The field takes the focus when a new selection arrives, so naming
// runs lasso, type, Enter, lasso, ... without the mouse leaving the plot for
// long. It empties itself after a naming succeeded, not after a refused name.
export default function NamingBar(props) {
  const view = (props.schema && props.schema.view) || {};
  const triggerPanelEvent = useTriggerPanelEvent();
  const [text, setText] = useState("");
  const input = useRef(null);

  useEffect(() => setText(""), [view.namings]);
  useEffect(() => {
    if (view.selected && input.current) input.current.focus();
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
