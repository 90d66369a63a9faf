// Validates an AsyncAPI document with the AsyncAPI initiative's own parser (schema, bindings,
// references); exits non-zero on any error. Usage: node validate-asyncapi.cjs FILE
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

(async () => {
  const { document, diagnostics } = await new Parser().parse(fs.readFileSync(process.argv[2], "utf8"));
  const counts = [0, 0, 0, 0];
  for (const d of diagnostics) {
    counts[d.severity] += 1;
    if (d.severity <= 1) console.log(d.severity === 0 ? "error" : "warning", d.code, d.message, JSON.stringify(d.path));
  }
  console.log(`asyncapi: ${counts[0]} errors, ${counts[1]} warnings, ${counts[2]} infos`);
  process.exit(document && counts[0] === 0 ? 0 : 1);
})();
