// Builds dist/index.js, the bundle fiftyone.yml names. The header records a
// hash of the sources so a test can tell when the committed bundle is stale.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function sourcesHash(dir = "src") {
  const hash = createHash("sha256");
  for (const name of readdirSync(dir).sort()) {
    hash.update(name);
    hash.update(readFileSync(join(dir, name)));
  }
  return hash.digest("hex");
}

const result = await build({
  entryPoints: ["src/index.jsx"],
  bundle: true,
  format: "iife",
  target: "es2020",
  jsx: "transform",
  jsxFactory: "React.createElement",
  jsxFragment: "React.Fragment",
  minify: false,
  write: false,
  legalComments: "none",
});
const header = `/* interactive-naming panel components; built by js/build.mjs; sources-sha256: ${sourcesHash()} */\n`;
writeFileSync("dist/index.js", header + result.outputFiles[0].text);
console.log(`dist/index.js: ${(header.length + result.outputFiles[0].text.length) / 1024 | 0} KiB`);
