// Validate Protime clockings webhook bodies with the JSON Schema (draft 2020-12), using ajv.
// Usage: npm ci && npx tsc && node dist/validate.js BODY.json...   (exit status 1 if one is invalid)
import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const schemaUrl = new URL("../../../schemas/clocking-change.schema.json", import.meta.url); // from dist/
const schema: object = JSON.parse(readFileSync(schemaUrl, "utf8"));

const ajv = new Ajv2020({ allErrors: true });
// ajv-formats is CommonJS: under "module": "NodeNext" the plugin is its `default` property.
// Without it `format: date` is only an annotation, and 2024-02-30 passes.
addFormats.default(ajv, ["date"]);
const validate = ajv.compile(schema);

const utf8 = new TextDecoder("utf-8", { fatal: true }); // refuses malformed UTF-8

/**
 * Every violation in one delivery body (the raw bytes of the POST); empty when valid.
 * Not checked (no JSON Schema can express them): repeated keys, lone surrogate escapes,
 * nesting beyond 127 levels; and JS numbers round integers above 2^53.
 */
export function violations(body: Uint8Array): string[] {
  let delivery: unknown;
  try {
    delivery = JSON.parse(utf8.decode(body));
  } catch (error) {
    return [`not JSON: ${(error as Error).message}`];
  }
  if (validate(delivery)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.message ?? e.keyword}`);
}

let invalid = 0;
for (const path of process.argv.slice(2)) {
  const errors = violations(readFileSync(path));
  console.log(`${path}: ${errors.length > 0 ? "INVALID" : "valid"}`);
  for (const error of errors) console.log(`  ${error}`);
  if (errors.length > 0) invalid += 1;
}
process.exit(invalid > 0 ? 1 : 0);
