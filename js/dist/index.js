/* interactive-naming panel components; built by js/build.mjs; sources-sha256: 1c471008d55208f4c8458d8a7b58d28f7fc89dd1c8b8beeed2dee942f1c9f861 */
(() => {
  // src/globals.js
  var React = window.React;
  var { registerComponent, PluginComponentType } = window.__fop__;
  var { useTriggerPanelEvent } = window.__foo__;

  // src/AnnotatorInput.jsx
  var { useEffect, useRef, useState } = React;
  var STORAGE_KEY = "interactive-naming:annotator";
  function AnnotatorInput(props) {
    const view = props.schema && props.schema.view || {};
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
    return /* @__PURE__ */ React.createElement("label", { style: { display: "flex", flexDirection: "column", gap: 2, fontSize: 14 } }, /* @__PURE__ */ React.createElement("span", null, "Annotator"), /* @__PURE__ */ React.createElement(
      "input",
      {
        "data-testid": "annotator-input",
        list: "interactive-naming-annotators",
        value: text,
        placeholder: "who is naming",
        onChange: (event) => setText(event.target.value),
        onBlur: () => text.trim() !== accepted && submit(text),
        onKeyDown: (event) => event.key === "Enter" && submit(text),
        style: {
          font: "inherit",
          padding: "6px 8px",
          minWidth: 180,
          color: "inherit",
          background: "transparent",
          border: "1px solid rgba(128,128,128,0.6)",
          borderRadius: 4
        }
      }
    ), /* @__PURE__ */ React.createElement("datalist", { id: "interactive-naming-annotators" }, (view.annotators || []).map((name) => /* @__PURE__ */ React.createElement("option", { key: name, value: name }))));
  }

  // src/geometry.js
  var ID_LENGTH = 24;
  function decodeBase64(text) {
    const binary = atob(text || "");
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }
  function splitIds(joined) {
    const ids = [];
    for (let i = 0; i + ID_LENGTH <= (joined || "").length; i += ID_LENGTH) {
      ids.push(joined.slice(i, i + ID_LENGTH));
    }
    return ids;
  }
  function decodeLayout(text) {
    if (!text) return null;
    const raw = JSON.parse(text);
    const ids = splitIds(raw.ids);
    const xy = new Float32Array(decodeBase64(raw.xy));
    if (xy.length !== 2 * ids.length) {
      throw new Error(`layout payload is inconsistent: ${ids.length} ids, ${xy.length / 2} points`);
    }
    return { ids, xy, signature: raw.signature, version: raw.version };
  }
  function decodeNames(text) {
    if (!text) return null;
    const raw = JSON.parse(text);
    return { codes: new Uint16Array(decodeBase64(raw.codes)), legend: raw.legend || [], signature: raw.signature, version: raw.version };
  }
  function namesFor(layout, names) {
    if (layout && names && names.signature === layout.signature && names.codes.length === layout.ids.length && names.codes.every((c) => c < names.legend.length)) {
      return names;
    }
    const n = layout ? layout.ids.length : 0;
    return { codes: new Uint16Array(n), legend: [{ name: "(unnamed)", color: "#b0b0b0", count: n, layer: 0 }], version: null };
  }
  function bounds(xy) {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < xy.length; i += 2) {
      const x = xy[i], y = xy[i + 1];
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
    if (!isFinite(minX)) return { minX: 0, minY: 0, maxX: 1, maxY: 1 };
    return { minX, minY, maxX, maxY };
  }
  function fitTransform(box, width, height, margin = 12, zoom = { k: 1, tx: 0, ty: 0 }) {
    const spanX = Math.max(box.maxX - box.minX, 1e-9);
    const spanY = Math.max(box.maxY - box.minY, 1e-9);
    const base = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
    const scale = base * zoom.k;
    const cx = (box.minX + box.maxX) / 2, cy = (box.minY + box.maxY) / 2;
    const ox = width / 2 + zoom.tx, oy = height / 2 + zoom.ty;
    return {
      scale,
      toScreen: (x, y) => [ox + (x - cx) * scale, oy - (y - cy) * scale],
      toData: (sx, sy) => [cx + (sx - ox) / scale, cy - (sy - oy) / scale]
    };
  }
  function pointInPolygon(x, y, polygon) {
    let inside = false;
    for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
      const [xi, yi] = polygon[i];
      const [xj, yj] = polygon[j];
      if (yi > y !== yj > y && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }
  function lassoIndices(xy, transform, polygon) {
    if (polygon.length < 3) return [];
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const [px, py] of polygon) {
      minX = Math.min(minX, px);
      maxX = Math.max(maxX, px);
      minY = Math.min(minY, py);
      maxY = Math.max(maxY, py);
    }
    const hits = [];
    for (let i = 0; i < xy.length / 2; i++) {
      const [sx, sy] = transform.toScreen(xy[2 * i], xy[2 * i + 1]);
      if (sx < minX || sx > maxX || sy < minY || sy > maxY) continue;
      if (pointInPolygon(sx, sy, polygon)) hits.push(i);
    }
    return hits;
  }
  function nearestIndex(xy, transform, sx, sy, radius = 6) {
    let best = -1, bestDistance = radius * radius;
    for (let i = 0; i < xy.length / 2; i++) {
      const [px, py] = transform.toScreen(xy[2 * i], xy[2 * i + 1]);
      const d = (px - sx) ** 2 + (py - sy) ** 2;
      if (d <= bestDistance) {
        best = i;
        bestDistance = d;
      }
    }
    return best;
  }
  function combineSelection(current, hits, mode) {
    if (mode === "add") return [.../* @__PURE__ */ new Set([...current, ...hits])];
    if (mode === "remove") {
      const drop = new Set(hits);
      return current.filter((id) => !drop.has(id));
    }
    return [...new Set(hits)];
  }

  // src/ConceptScatter.jsx
  var { useEffect: useEffect2, useMemo, useRef: useRef2, useState: useState2 } = React;
  var HEIGHT = 420;
  var POINT_RADIUS = 2.6;
  var SELECTED_COLOR = "#ffffff";
  function ConceptScatter(props) {
    const { schema, data } = props;
    const view = schema && schema.view || {};
    const triggerPanelEvent = useTriggerPanelEvent();
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
        return null;
      }
    }, [data && data.names]);
    const layout = useMemo(() => {
      if (!positions) return null;
      const { codes, legend, version } = namesFor(positions, names);
      return { ...positions, codes, legend, version: version ?? positions.version };
    }, [positions, names]);
    const selectedIds = useMemo(() => splitIds(data && data.selection), [data && data.selection]);
    const [pending, setPending] = useState2(null);
    useEffect2(() => setPending(null), [data && data.selection]);
    const currentIds = pending || selectedIds;
    const selectedIndex = useMemo(() => {
      if (!layout) return /* @__PURE__ */ new Set();
      const wanted = new Set(currentIds);
      const hits = /* @__PURE__ */ new Set();
      layout.ids.forEach((id, i) => wanted.has(id) && hits.add(i));
      return hits;
    }, [layout, currentIds]);
    const wrapper = useRef2(null);
    const canvas = useRef2(null);
    const [width, setWidth] = useState2(600);
    const [zoom, setZoom] = useState2({ k: 1, tx: 0, ty: 0 });
    const [lasso, setLasso] = useState2(null);
    const [hover, setHover] = useState2(null);
    const drag = useRef2(null);
    useEffect2(() => {
      if (!wrapper.current) return void 0;
      const observer = new ResizeObserver(([entry]) => setWidth(Math.max(1, entry.contentRect.width)));
      observer.observe(wrapper.current);
      return () => observer.disconnect();
    }, [Boolean(layout)]);
    const box = useMemo(() => layout ? bounds(layout.xy) : null, [layout]);
    const transform = useMemo(
      () => box ? fitTransform(box, width, HEIGHT, 14, zoom) : null,
      [box, width, zoom]
    );
    useEffect2(() => {
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
      el.namingPoints = () => layout.ids.map((id, i) => {
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
      triggerPanelEvent(view.on_select, { ids: next }, void 0, (result) => result && result.error && setPending(null));
    };
    const modeOf = (event) => event.shiftKey ? "add" : event.altKey ? "remove" : "replace";
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
      const reach = Math.max(0, ...d.path.map(([x, y]) => Math.hypot(x - d.start[0], y - d.start[1])));
      clickIsLasso.current = d.pan || reach >= 4 && d.path.length >= 3;
      if (d.pan || !clickIsLasso.current) return;
      const hits = lassoIndices(layout.xy, transform, d.path).map((i) => layout.ids[i]);
      if (hits.length || modeOf(event) === "replace") send(hits, modeOf(event));
    };
    const clickIsLasso = useRef2(false);
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
      const factor = Math.exp(-event.deltaY * 15e-4);
      setZoom((z) => {
        const k = Math.min(50, Math.max(0.5, z.k * factor));
        const applied = k / z.k;
        const cx = width / 2 + z.tx, cy = HEIGHT / 2 + z.ty;
        return { k, tx: z.tx + (sx - cx) * (1 - applied), ty: z.ty + (sy - cy) * (1 - applied) };
      });
    };
    useEffect2(() => {
      if (!view.on_focus) return void 0;
      let leftAt = null;
      const onBlur = () => {
        leftAt = Date.now();
      };
      const onFocus = () => {
        if (leftAt !== null && Date.now() - leftAt > 1e3) triggerPanelEvent(view.on_focus, {});
        leftAt = null;
      };
      window.addEventListener("blur", onBlur);
      window.addEventListener("focus", onFocus);
      return () => {
        window.removeEventListener("blur", onBlur);
        window.removeEventListener("focus", onFocus);
      };
    }, [view.on_focus]);
    useEffect2(() => {
      const el = canvas.current;
      if (!el) return void 0;
      el.addEventListener("wheel", onWheel, { passive: false });
      return () => el.removeEventListener("wheel", onWheel);
    });
    const selectConcept = (code, event) => {
      const ids = layout.ids.filter((_, i) => layout.codes[i] === code);
      send(ids, modeOf(event));
    };
    if (!layout) {
      const text = problem ? `The layout could not be read (${problem}); press Refresh.` : "Loading the layout\u2026";
      return /* @__PURE__ */ React.createElement("div", { "data-testid": "concept-scatter-message", style: { padding: 8, opacity: 0.8 } }, text);
    }
    const hovered = hover && layout.legend[layout.codes[hover.i]];
    return /* @__PURE__ */ React.createElement("div", { "data-testid": "concept-scatter", style: { width: "100%" } }, /* @__PURE__ */ React.createElement("div", { ref: wrapper, style: {
      position: "relative",
      width: "100%",
      height: HEIGHT + 2,
      boxSizing: "border-box",
      border: "1px solid rgba(128,128,128,0.35)",
      borderRadius: 4
    } }, /* @__PURE__ */ React.createElement(
      "canvas",
      {
        ref: canvas,
        "data-testid": "concept-scatter-canvas",
        "data-points": layout.ids.length,
        "data-selected": selectedIndex.size,
        "data-version": layout.version,
        style: { width: "100%", height: HEIGHT, cursor: "crosshair", display: "block", touchAction: "none" },
        onPointerDown,
        onPointerMove,
        onPointerUp,
        onPointerCancel: onPointerUp,
        onPointerLeave: () => setHover(null),
        onClick,
        onDoubleClick: () => setZoom({ k: 1, tx: 0, ty: 0 })
      }
    ), hovered && /* @__PURE__ */ React.createElement("div", { style: {
      position: "absolute",
      left: hover.x + 10,
      top: hover.y + 8,
      pointerEvents: "none",
      background: "rgba(20,20,20,0.85)",
      color: "#eee",
      padding: "2px 6px",
      borderRadius: 3,
      fontSize: 12,
      whiteSpace: "nowrap"
    } }, hovered.name)), /* @__PURE__ */ React.createElement("div", { style: { display: "flex", flexWrap: "wrap", gap: "4px 12px", marginTop: 6, fontSize: 13 } }, layout.legend.map((entry, code) => /* @__PURE__ */ React.createElement(
      "span",
      {
        key: code,
        "data-testid": "scatter-legend-entry",
        title: "Click to select this concept's maps (shift adds, alt removes)",
        onClick: (event) => selectConcept(code, event),
        style: { cursor: "pointer", display: "inline-flex", alignItems: "center", gap: 4 }
      },
      /* @__PURE__ */ React.createElement("span", { style: { width: 10, height: 10, borderRadius: 5, background: entry.color, display: "inline-block" } }),
      entry.name,
      " (",
      entry.count,
      ")"
    )), /* @__PURE__ */ React.createElement("span", { style: { opacity: 0.6 } }, "drag: lasso \xB7 shift: add \xB7 alt: remove \xB7 click: one map \xB7 ctrl-drag: pan \xB7 wheel: zoom \xB7", " ", /* @__PURE__ */ React.createElement("span", { style: { cursor: "pointer", textDecoration: "underline" }, onClick: () => setZoom({ k: 1, tx: 0, ty: 0 }) }, "reset view"))));
  }

  // src/MapGallery.jsx
  var { useEffect: useEffect3, useState: useState3 } = React;
  function MapGallery(props) {
    const view = props.schema && props.schema.view || {};
    const items = view.items || [];
    const triggerPanelEvent = useTriggerPanelEvent();
    const [dropped, setDropped] = useState3([]);
    const shown = items.map((item) => item.map_id).join(",");
    useEffect3(() => setDropped([]), [shown]);
    const drop = (mapId) => {
      if (!view.on_drop) return;
      const all = [.../* @__PURE__ */ new Set([...dropped, mapId])];
      setDropped(all);
      triggerPanelEvent(view.on_drop, { map_ids: all });
    };
    return /* @__PURE__ */ React.createElement(
      "div",
      {
        "data-testid": "map-gallery",
        style: { display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(104px, 1fr))", gap: 8, width: "100%" }
      },
      items.map((item) => /* @__PURE__ */ React.createElement(
        "figure",
        {
          key: item.map_id,
          "data-testid": "map-gallery-item",
          "data-map-id": item.map_id,
          title: `${item.caption}
click to drop it from the selection`,
          onClick: () => drop(item.map_id),
          style: {
            margin: 0,
            cursor: "pointer",
            opacity: dropped.includes(item.map_id) ? 0.3 : 1,
            border: `2px solid ${item.color || "transparent"}`,
            borderRadius: 4,
            overflow: "hidden",
            position: "relative"
          }
        },
        /* @__PURE__ */ React.createElement("img", { src: item.src, alt: item.caption, style: { width: "100%", aspectRatio: "1 / 1", display: "block" } }),
        /* @__PURE__ */ React.createElement("figcaption", { style: {
          fontSize: 11,
          padding: "2px 4px",
          whiteSpace: "nowrap",
          overflow: "hidden",
          textOverflow: "ellipsis",
          opacity: 0.85
        } }, item.concept ? `${item.concept} \xB7 ${item.caption}` : item.caption)
      ))
    );
  }

  // src/NamingBar.jsx
  var { useEffect: useEffect4, useRef: useRef3, useState: useState4 } = React;
  var drafts = /* @__PURE__ */ new Map();
  function NamingBar(props) {
    const view = props.schema && props.schema.view || {};
    const triggerPanelEvent = useTriggerPanelEvent();
    const key = props.path || "name_bar";
    const draft = drafts.get(key) || { text: "", namings: view.namings };
    const [text, setTextState] = useState4(draft.text);
    const input = useRef3(null);
    const setText = (value, namings = view.namings) => {
      drafts.set(key, { text: value, namings });
      setTextState(value);
    };
    useEffect4(() => {
      if (draft.namings !== view.namings) setText("", view.namings);
    }, [view.namings]);
    useEffect4(() => {
      if (view.selected && input.current) input.current.focus({ preventScroll: true });
    }, [view.selection_key]);
    const submit = () => {
      if (view.on_name) triggerPanelEvent(view.on_name, { concept: text });
    };
    return /* @__PURE__ */ React.createElement("div", { style: { display: "flex", alignItems: "flex-end", gap: 8 } }, /* @__PURE__ */ React.createElement("label", { style: { display: "flex", flexDirection: "column", gap: 2, fontSize: 14 } }, /* @__PURE__ */ React.createElement("span", null, "New concept"), /* @__PURE__ */ React.createElement(
      "input",
      {
        ref: input,
        "data-testid": "new-concept-input",
        value: text,
        placeholder: "name, then Enter",
        onChange: (event) => setText(event.target.value),
        onKeyDown: (event) => event.key === "Enter" && submit(),
        style: {
          font: "inherit",
          padding: "6px 8px",
          minWidth: 160,
          color: "inherit",
          background: "transparent",
          border: "1px solid rgba(128,128,128,0.6)",
          borderRadius: 4
        }
      }
    )), /* @__PURE__ */ React.createElement(
      "button",
      {
        "data-testid": "name-selection",
        onClick: submit,
        style: {
          font: "inherit",
          padding: "7px 14px",
          borderRadius: 4,
          border: "none",
          cursor: "pointer",
          background: "#ff6d04",
          color: "#fff",
          whiteSpace: "nowrap"
        }
      },
      "Name selection"
    ));
  }

  // src/index.jsx
  for (const [name, component] of [
    ["NamingAnnotator", AnnotatorInput],
    ["NamingConceptScatter", ConceptScatter],
    ["NamingMapGallery", MapGallery],
    ["NamingBar", NamingBar]
  ]) {
    registerComponent({ name, label: name, component, type: PluginComponentType.Component, activator: () => true });
  }
})();
