import { React, useTriggerPanelEvent } from "./globals.js";

const { useEffect, useState } = React;

// The selected maps as a wrapping grid of heatmap thumbnails. Clicking a
// thumbnail drops that map from the selection before naming.
export default function MapGallery(props) {
  const view = (props.schema && props.schema.view) || {};
  const items = view.items || [];
  const triggerPanelEvent = useTriggerPanelEvent();
  // maps dropped here that the panel has not answered for yet: each drop
  // sends them all, so quick drops in a row all count
  const [dropped, setDropped] = useState([]);
  const shown = items.map((item) => item.map_id).join(",");
  useEffect(() => setDropped([]), [shown]); // the panel answered: a new page of the selection

  const drop = (mapId) => {
    if (!view.on_drop) return;
    const all = [...new Set([...dropped, mapId])];
    setDropped(all);
    triggerPanelEvent(view.on_drop, { map_ids: all });
  };

  return (
    <div
      data-testid="map-gallery"
      style={{ display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(104px, 1fr))", gap: 8, width: "100%" }}
    >
      {items.map((item) => (
        <figure
          key={item.map_id}
          data-testid="map-gallery-item"
          data-map-id={item.map_id}
          title={`${item.caption}\nclick to drop it from the selection`}
          onClick={() => drop(item.map_id)}
          style={{ margin: 0, cursor: "pointer", opacity: dropped.includes(item.map_id) ? 0.3 : 1,
                   border: `2px solid ${item.color || "transparent"}`, borderRadius: 4, overflow: "hidden",
                   position: "relative" }}
        >
          <img src={item.src} alt={item.caption} style={{ width: "100%", aspectRatio: "1 / 1", display: "block" }} />
          <figcaption style={{ fontSize: 11, padding: "2px 4px", whiteSpace: "nowrap", overflow: "hidden",
                               textOverflow: "ellipsis", opacity: 0.85 }}>
            {item.concept ? `${item.concept} · ${item.caption}` : item.caption}
          </figcaption>
        </figure>
      ))}
    </div>
  );
}
