import assert from "node:assert/strict";
import { test } from "node:test";

import {
  bounds, combineSelection, fitTransform, lassoIndices, namesFor, nearestIndex, pointInPolygon, splitIds,
} from "../src/geometry.js";

test("point in polygon: inside, outside, concave notch", () => {
  const square = [[0, 0], [10, 0], [10, 10], [0, 10]];
  assert.equal(pointInPolygon(5, 5, square), true);
  assert.equal(pointInPolygon(15, 5, square), false);
  const notched = [[0, 0], [10, 0], [10, 10], [5, 5], [0, 10]]; // V cut from the top
  assert.equal(pointInPolygon(5, 8, notched), false);
  assert.equal(pointInPolygon(5, 2, notched), true);
});

test("fit transform keeps the aspect ratio, puts y up, and inverts", () => {
  const t = fitTransform({ minX: 0, minY: 0, maxX: 2, maxY: 1 }, 220, 120, 10);
  const [sx0, sy0] = t.toScreen(0, 0);
  const [sx1, sy1] = t.toScreen(2, 1);
  assert.ok(Math.abs(sx0 - 10) < 1e-9 && Math.abs(sx1 - 210) < 1e-9);
  assert.ok(sy1 < sy0, "larger y is higher on screen");
  assert.ok(Math.abs((sy0 - sy1) - 100) < 1e-9, "same scale on both axes");
  const [x, y] = t.toData(sx1, sy1);
  assert.ok(Math.abs(x - 2) < 1e-9 && Math.abs(y - 1) < 1e-9);
  const zoomed = fitTransform({ minX: 0, minY: 0, maxX: 2, maxY: 1 }, 220, 120, 10, { k: 2, tx: 5, ty: 0 });
  assert.equal(zoomed.scale, 2 * t.scale);
});

test("lasso picks exactly the points inside, by screen position", () => {
  const xy = new Float32Array([0, 0, 1, 0, 2, 0, 0, 1, 1, 1, 2, 1]);
  const t = fitTransform(bounds(xy), 300, 200, 0);
  const [ax, ay] = t.toScreen(0.5, -0.5);
  const [bx, by] = t.toScreen(2.5, 0.5);
  const box = [[ax, ay], [bx, ay], [bx, by], [ax, by]];
  assert.deepEqual(lassoIndices(xy, t, box), [1, 2]);
  assert.deepEqual(lassoIndices(xy, t, box.slice(0, 2)), [], "two points are no lasso");
  const [px, py] = t.toScreen(1, 1);
  assert.equal(nearestIndex(xy, t, px + 2, py - 2, 6), 4);
  assert.equal(nearestIndex(xy, t, px + 40, py, 6), -1);
});

test("selection modes: replace, add keeps order without repeats, remove", () => {
  assert.deepEqual(combineSelection(["a", "b"], ["c", "c"], "replace"), ["c"]);
  assert.deepEqual(combineSelection(["a", "b"], ["b", "c"], "add"), ["a", "b", "c"]);
  assert.deepEqual(combineSelection(["a", "b", "c"], ["b"], "remove"), ["a", "c"]);
});

test("ids split into 24-character ObjectIds", () => {
  const a = "0123456789abcdef01234567", b = "89abcdef0123456789abcdef";
  assert.deepEqual(splitIds(a + b), [a, b]);
  assert.deepEqual(splitIds(""), []);
});

test("names are drawn only over the layout they were sent for", () => {
  const layout = { ids: ["a".repeat(24), "b".repeat(24)], signature: "s1" };
  const names = { codes: new Uint16Array([1, 0]), legend: [{ name: "(unnamed)" }, { name: "x" }], signature: "s1", version: 3 };
  assert.equal(namesFor(layout, names), names);
  const stale = namesFor(layout, { ...names, signature: "s0" });
  assert.deepEqual([...stale.codes], [0, 0]);
  assert.equal(stale.legend[0].name, "(unnamed)");
  assert.deepEqual([...namesFor(layout, null).codes], [0, 0]);
  const broken = namesFor(layout, { ...names, codes: new Uint16Array([1, 5]) }); // no legend entry 5
  assert.deepEqual([...broken.codes], [0, 0]);
});
