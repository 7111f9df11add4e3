// Pure functions of the concept scatter: decoding the layout the panel
// sends, fitting it to the canvas, and lasso hit-testing. No DOM, no React,
// so node's test runner checks them directly.

export const ID_LENGTH = 24; // an ObjectId in hex

export function decodeBase64(text) {
  const binary = atob(text || "");
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

export function splitIds(joined) {
  const ids = [];
  for (let i = 0; i + ID_LENGTH <= (joined || "").length; i += ID_LENGTH) {
    ids.push(joined.slice(i, i + ID_LENGTH));
  }
  return ids;
}

// The panel sends JSON strings (strings are replaced whole by the App,
// unlike arrays, which it would merge element by element): the layout (ids
// and positions, sent when the maps change) and the names (legend index per
// map, sent after every action), tied together by the layout's signature.
export function decodeLayout(text) {
  if (!text) return null;
  const raw = JSON.parse(text);
  const ids = splitIds(raw.ids);
  const xy = new Float32Array(decodeBase64(raw.xy));
  if (xy.length !== 2 * ids.length) {
    throw new Error(`layout payload is inconsistent: ${ids.length} ids, ${xy.length / 2} points`);
  }
  return { ids, xy, signature: raw.signature, version: raw.version };
}

export function decodeNames(text) {
  if (!text) return null;
  const raw = JSON.parse(text);
  return { codes: new Uint16Array(decodeBase64(raw.codes)), legend: raw.legend || [], signature: raw.signature, version: raw.version };
}

// The names to draw over a layout: those sent for it, else (while a new
// layout or new names are on their way) none: every map unnamed.
export function namesFor(layout, names) {
  if (
    layout && names && names.signature === layout.signature && names.codes.length === layout.ids.length &&
    names.codes.every((c) => c < names.legend.length)
  ) {
    return names;
  }
  const n = layout ? layout.ids.length : 0;
  return { codes: new Uint16Array(n), legend: [{ name: "(unnamed)", color: "#b0b0b0", count: n, layer: 0 }], version: null };
}

export function bounds(xy) {
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

// Data → screen transform keeping the aspect ratio, y pointing up, with a
// margin, then a zoom (k) about the canvas centre and a pan (tx, ty).
export function fitTransform(box, width, height, margin = 12, zoom = { k: 1, tx: 0, ty: 0 }) {
  const spanX = Math.max(box.maxX - box.minX, 1e-9);
  const spanY = Math.max(box.maxY - box.minY, 1e-9);
  const base = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
  const scale = base * zoom.k;
  const cx = (box.minX + box.maxX) / 2, cy = (box.minY + box.maxY) / 2;
  const ox = width / 2 + zoom.tx, oy = height / 2 + zoom.ty;
  return {
    scale,
    toScreen: (x, y) => [ox + (x - cx) * scale, oy - (y - cy) * scale],
    toData: (sx, sy) => [cx + (sx - ox) / scale, cy - (sy - oy) / scale],
  };
}

// Even-odd rule; polygon is [[x, y], ...] in screen pixels.
export function pointInPolygon(x, y, polygon) {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// Indices of the points whose screen position lies inside the lasso.
export function lassoIndices(xy, transform, polygon) {
  if (polygon.length < 3) return [];
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [px, py] of polygon) {
    minX = Math.min(minX, px); maxX = Math.max(maxX, px);
    minY = Math.min(minY, py); maxY = Math.max(maxY, py);
  }
  const hits = [];
  for (let i = 0; i < xy.length / 2; i++) {
    const [sx, sy] = transform.toScreen(xy[2 * i], xy[2 * i + 1]);
    if (sx < minX || sx > maxX || sy < minY || sy > maxY) continue;
    if (pointInPolygon(sx, sy, polygon)) hits.push(i);
  }
  return hits;
}

// The point nearest to (sx, sy) within radius pixels, or -1.
export function nearestIndex(xy, transform, sx, sy, radius = 6) {
  let best = -1, bestDistance = radius * radius;
  for (let i = 0; i < xy.length / 2; i++) {
    const [px, py] = transform.toScreen(xy[2 * i], xy[2 * i + 1]);
    const d = (px - sx) ** 2 + (py - sy) ** 2;
    if (d <= bestDistance) { best = i; bestDistance = d; }
  }
  return best;
}

// Combine a lasso's hits with the current selection: replace, add (shift)
// or remove (alt), keeping the order ids were first selected in.
export function combineSelection(current, hits, mode) {
  if (mode === "add") return [...new Set([...current, ...hits])];
  if (mode === "remove") {
    const drop = new Set(hits);
    return current.filter((id) => !drop.has(id));
  }
  return [...new Set(hits)];
}
