import { React, useTriggerPanelEvent } from "./globals.js";
import {
  bounds, combineSelection, decodeLayout, decodeNames, fitTransform, lassoIndices, namesFor, nearestIndex, splitIds,
} from "./geometry.js";

const { useEffect, useMemo, useRef, useState } = React;

const HEIGHT = 420;
const POINT_RADIUS = 2.6;
const SELECTED_COLOR = "#ffffff";

// The layout of all maps, coloured by the annotator's concepts. Drag a lasso
// to select (shift adds, alt removes), click a point to select one map, click
// a legend entry to select a concept's maps; wheel zooms, double-click resets.
export default function ConceptScatter(props) {
  const { schema, data } = props;
  const view = (schema && schema.view) || {};
  const triggerPanelEvent = useTriggerPanelEvent();

  // a payload that cannot be read is reported in place, not a broken panel
  const [positions, problem] = useMemo(() => {
    try {
      return [decodeLayout(data && data.layout), null];
    } catch (error) {
      return [null, String(error)];
    }
  }, [data && data.layout]);
  const names = useMemo(() => {
    try {
      return decodeNames(data && data.names);
    } catch (error) {
      return null; // drawn as unnamed until good names arrive
    }
  }, [data && data.names]);
  const layout = useMemo(() => {
    if (!positions) return null;
    const { codes, legend, version } = namesFor(positions, names);
    return { ...positions, codes, legend, version: version ?? positions.version };
  }, [positions, names]);
  const selectedIds = useMemo(() => splitIds(data && data.selection), [data && data.selection]);
  // the selection this component sent and the panel has not answered yet:
  // shown at once, and the base of the next change (two quick shift-lassos
  // both count)
  const [pending, setPending] = useState(null);
  useEffect(() => setPending(null), [data && data.selection]);
  const currentIds = pending || selectedIds;
  const selectedIndex = useMemo(() => {
    if (!layout) return new Set();
    const wanted = new Set(currentIds);
    const hits = new Set();
    layout.ids.forEach((id, i) => wanted.has(id) && hits.add(i));
    return hits;
  }, [layout, currentIds]);

  const wrapper = useRef(null);
  const canvas = useRef(null);
  const [width, setWidth] = useState(600);
  const [zoom, setZoom] = useState({ k: 1, tx: 0, ty: 0 });
  const [lasso, setLasso] = useState(null);
  const [hover, setHover] = useState(null);
  const drag = useRef(null);

  useEffect(() => {
    if (!wrapper.current) return undefined;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.max(1, entry.contentRect.width)));
    observer.observe(wrapper.current);
    return () => observer.disconnect();
  }, [Boolean(layout)]); // the wrapper exists once a layout does

  const box = useMemo(() => (layout ? bounds(layout.xy) : null), [layout]);
  const transform = useMemo(
    () => (box ? fitTransform(box, width, HEIGHT, 14, zoom) : null),
    [box, width, zoom]
  );

  // draw: unnamed first (grey, underneath), then concepts, then the selection
  useEffect(() => {
    const el = canvas.current;
    if (!el || !layout || !transform) return;
    const ratio = window.devicePixelRatio || 1;
    el.width = Math.round(width * ratio);
    el.height = Math.round(HEIGHT * ratio);
    const g = el.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, HEIGHT);
    const n = layout.ids.length;
    const order = [...layout.legend.keys()].sort((a, b) => layout.legend[a].layer - layout.legend[b].layer);
    for (const code of order) {
      g.fillStyle = layout.legend[code].color;
      g.globalAlpha = selectedIndex.size ? 0.45 : 0.85;
      g.beginPath();
      for (let i = 0; i < n; i++) {
        if (layout.codes[i] !== code) continue;
        const [sx, sy] = transform.toScreen(layout.xy[2 * i], layout.xy[2 * i + 1]);
        g.moveTo(sx + POINT_RADIUS, sy);
        g.arc(sx, sy, POINT_RADIUS, 0, 2 * Math.PI);
      }
      g.fill();
    }
    // the selection: white halos first, then the fills over them, so that
    // overlapping selected maps keep their concept's colour
    g.globalAlpha = 1;
    g.fillStyle = SELECTED_COLOR;
    g.beginPath();
    for (const i of selectedIndex) {
      const [sx, sy] = transform.toScreen(layout.xy[2 * i], layout.xy[2 * i + 1]);
      g.moveTo(sx + POINT_RADIUS + 1.6, sy);
      g.arc(sx, sy, POINT_RADIUS + 1.6, 0, 2 * Math.PI);
    }
    g.fill();
    for (const i of selectedIndex) {
      const [sx, sy] = transform.toScreen(layout.xy[2 * i], layout.xy[2 * i + 1]);
      g.fillStyle = layout.legend[layout.codes[i]].color;
      g.beginPath();
      g.arc(sx, sy, POINT_RADIUS + 0.4, 0, 2 * Math.PI);
      g.fill();
    }
    if (lasso && lasso.length > 1) {
      g.strokeStyle = "#ff6d04";
      g.setLineDash([4, 3]);
      g.beginPath();
      g.moveTo(lasso[0][0], lasso[0][1]);
      for (const [x, y] of lasso.slice(1)) g.lineTo(x, y);
      g.closePath();
      g.stroke();
      g.setLineDash([]);
    }
    // where each map is on screen, for tests and for anyone scripting the App
    el.namingPoints = () =>
      layout.ids.map((id, i) => {
        const [x, y] = transform.toScreen(layout.xy[2 * i], layout.xy[2 * i + 1]);
        return { id, x, y, concept: layout.legend[layout.codes[i]].name };
      });
  }, [layout, transform, selectedIndex, lasso, width]);

  const localPoint = (event) => {
    const rect = canvas.current.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  };

  const send = (ids, mode) => {
    if (!view.on_select) return;
    const next = combineSelection(currentIds, ids, mode);
    setPending(next);
    // if the panel fails to take it, show what it holds again
    triggerPanelEvent(view.on_select, { ids: next }, undefined, (result) => result && result.error && setPending(null));
  };

  const modeOf = (event) => (event.shiftKey ? "add" : event.altKey ? "remove" : "replace");

  // pointer capture: a drag released outside the canvas still ends here
  const onPointerDown = (event) => {
    if (event.button !== 0 || !layout) return;
    canvas.current.setPointerCapture(event.pointerId);
    const point = localPoint(event);
    drag.current = { start: point, path: [point], pan: event.ctrlKey || event.metaKey, zoom };
    if (!drag.current.pan) setLasso([point]);
  };

  const onPointerMove = (event) => {
    if (!layout || !transform) return;
    const point = localPoint(event);
    const d = drag.current;
    if (d && d.pan) {
      setZoom({ ...d.zoom, tx: d.zoom.tx + point[0] - d.start[0], ty: d.zoom.ty + point[1] - d.start[1] });
      return;
    }
    if (d) {
      d.path.push(point);
      setLasso([...d.path]);
      return;
    }
    const i = nearestIndex(layout.xy, transform, point[0], point[1]);
    setHover(i < 0 ? null : { i, x: point[0], y: point[1] });
  };

  const onPointerUp = (event) => {
    const d = drag.current;
    drag.current = null;
    if (canvas.current.hasPointerCapture(event.pointerId)) canvas.current.releasePointerCapture(event.pointerId);
    setLasso(null);
    if (!d || !layout) return;
    // a lasso, unless the pointer stayed put (a closed lasso ends where it began)
    const reach = Math.max(0, ...d.path.map(([x, y]) => Math.hypot(x - d.start[0], y - d.start[1])));
    clickIsLasso.current = d.pan || (reach >= 4 && d.path.length >= 3);
    if (d.pan || !clickIsLasso.current) return;
    const hits = lassoIndices(layout.xy, transform, d.path).map((i) => layout.ids[i]);
    if (hits.length || modeOf(event) === "replace") send(hits, modeOf(event));
  };

  // a click (not the end of a lasso or pan, not the second of a double-click) picks the nearest map
  const clickIsLasso = useRef(false);
  const onClick = (event) => {
    const wasLasso = clickIsLasso.current;
    clickIsLasso.current = false;
    if (wasLasso || event.detail > 1 || !layout) return;
    const [x, y] = localPoint(event);
    const i = nearestIndex(layout.xy, transform, x, y);
    if (i >= 0) send([layout.ids[i]], modeOf(event));
  };

  const onWheel = (event) => {
    if (!transform) return;
    event.preventDefault();
    const [sx, sy] = localPoint(event);
    const factor = Math.exp(-event.deltaY * 0.0015);
    setZoom((z) => {
      const k = Math.min(50, Math.max(0.5, z.k * factor));
      const applied = k / z.k;
      // keep the point under the cursor where it is
      const cx = width / 2 + z.tx, cy = HEIGHT / 2 + z.ty;
      return { k, tx: z.tx + (sx - cx) * (1 - applied), ty: z.ty + (sy - cy) * (1 - applied) };
    });
  };

  // coming back to this tab: another tab or annotator may have named maps
  // (only after the tab was really left: the page's first focus, or a
  // click in a dialog, must not send an event that races the user's own)
  useEffect(() => {
    if (!view.on_focus) return undefined;
    let leftAt = null;
    const onBlur = () => { leftAt = Date.now(); };
    const onFocus = () => {
      if (leftAt !== null && Date.now() - leftAt > 1000) triggerPanelEvent(view.on_focus, {});
      leftAt = null;
    };
    window.addEventListener("blur", onBlur);
    window.addEventListener("focus", onFocus);
    return () => {
      window.removeEventListener("blur", onBlur);
      window.removeEventListener("focus", onFocus);
    };
  }, [view.on_focus]);

  useEffect(() => {
    const el = canvas.current;
    if (!el) return undefined;
    el.addEventListener("wheel", onWheel, { passive: false });
    return () => el.removeEventListener("wheel", onWheel);
  });

  const selectConcept = (code, event) => {
    const ids = layout.ids.filter((_, i) => layout.codes[i] === code);
    send(ids, modeOf(event));
  };

  if (!layout) {
    const text = problem ? `The layout could not be read (${problem}); press Refresh.` : "Loading the layout…";
    return <div data-testid="concept-scatter-message" style={{ padding: 8, opacity: 0.8 }}>{text}</div>;
  }

  const hovered = hover && layout.legend[layout.codes[hover.i]];
  return (
    <div data-testid="concept-scatter" style={{ width: "100%" }}>
      <div ref={wrapper} style={{ position: "relative", width: "100%", height: HEIGHT + 2, boxSizing: "border-box",
                                  border: "1px solid rgba(128,128,128,0.35)", borderRadius: 4 }}>
        <canvas
          ref={canvas}
          data-testid="concept-scatter-canvas"
          data-points={layout.ids.length}
          data-selected={selectedIndex.size}
          data-version={layout.version}
          style={{ width: "100%", height: HEIGHT, cursor: "crosshair", display: "block", touchAction: "none" }}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerCancel={onPointerUp}
          onPointerLeave={() => setHover(null)}
          onClick={onClick}
          onDoubleClick={() => setZoom({ k: 1, tx: 0, ty: 0 })}
        />
        {hovered && (
          <div style={{ position: "absolute", left: hover.x + 10, top: hover.y + 8, pointerEvents: "none",
                        background: "rgba(20,20,20,0.85)", color: "#eee", padding: "2px 6px",
                        borderRadius: 3, fontSize: 12, whiteSpace: "nowrap" }}>
            {hovered.name}
          </div>
        )}
      </div>
      <div style={{ display: "flex", flexWrap: "wrap", gap: "4px 12px", marginTop: 6, fontSize: 13 }}>
        {layout.legend.map((entry, code) => (
          <span
            key={code}
            data-testid="scatter-legend-entry"
            title="Click to select this concept's maps (shift adds, alt removes)"
            onClick={(event) => selectConcept(code, event)}
            style={{ cursor: "pointer", display: "inline-flex", alignItems: "center", gap: 4 }}
          >
            <span style={{ width: 10, height: 10, borderRadius: 5, background: entry.color, display: "inline-block" }} />
            {entry.name} ({entry.count})
          </span>
        ))}
        <span style={{ opacity: 0.6 }}>
          drag: lasso · shift: add · alt: remove · click: one map · ctrl-drag: pan · wheel: zoom ·{" "}
          <span style={{ cursor: "pointer", textDecoration: "underline" }} onClick={() => setZoom({ k: 1, tx: 0, ty: 0 })}>
            reset view
          </span>
        </span>
      </div>
    </div>
  );
}
