// Decodes a layout and a names payload written by the Python panel (fiftyone_plugin.naming)
// with the scatter's own decoder and prints what it read, so tests/test_js.py
// can check that both sides agree on the format.
import { readFileSync } from "node:fs";

import { decodeLayout, decodeNames, namesFor } from "./src/geometry.js";

const layout = decodeLayout(readFileSync(process.argv[2], "utf8"));
const names = namesFor(layout, decodeNames(readFileSync(process.argv[3], "utf8")));
console.log(JSON.stringify({
  ids: layout.ids,
  xy: [...layout.xy],
  names: [...names.codes].map((c) => names.legend[c].name),
  colors: [...names.codes].map((c) => names.legend[c].color),
  version: names.version,
}));
