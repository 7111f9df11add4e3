// Decodes a layout payload written by the Python panel (fiftyone_plugin.naming)
// with the scatter's own decoder and prints what it read, so tests/test_js.py
// can check that both sides agree on the format.
import { readFileSync } from "node:fs";

import { decodeLayout } from "./src/geometry.js";

const layout = decodeLayout(readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify({
  ids: layout.ids,
  xy: [...layout.xy],
  names: [...layout.codes].map((c) => layout.legend[c].name),
  colors: [...layout.codes].map((c) => layout.legend[c].color),
  version: layout.version,
}));
