/**
 * The field names the pinned `stripe` package's TypeScript types give an object or a params hash.
 * The package is generated from a later tag of Stripe's spec than the vendored subset (see the
 * subset's `x-source`), so comparing the two shows whether the fields the gateway touches differ
 * between them. Read from the package's generated declaration files line by line (loading the
 * TypeScript compiler to parse them costs seconds): an interface's fields are the `name:` or
 * `name?:` lines one indent level inside its braces.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The installed package (its `exports` do not expose the declaration files or package.json). */
const esm = fileURLToPath(new URL("../../node_modules/stripe/esm/", import.meta.url));

/** The property names of `name` in `file` (relative to the package's esm/), including `PaginationParams`'. */
export function typeFields(file: string, name: string): string[] {
  const lines = readFileSync(join(esm, file), "utf8").split("\n");
  const start = lines.findIndex((line) =>
    new RegExp(`^\\s*(export )?interface ${name}( extends \\w+)? \\{$`).test(line),
  );
  if (start < 0) throw new Error(`no interface ${name} in stripe/esm/${file}`);
  const header = lines[start] ?? "";
  const indent = /^\s*/.exec(header)?.[0] ?? "";
  const fields: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line === `${indent}}`) break;
    const field = new RegExp(`^${indent}    (\\w+)\\??:`).exec(line)?.[1];
    if (field) fields.push(field);
  }
  return header.includes(" extends PaginationParams ")
    ? [...fields, ...typeFields("shared.d.ts", "PaginationParams")]
    : fields;
}

/** The `version` the package pins (its `apiVersion.js`) and the spec tag it was generated from. */
export function packageVersions(): { apiVersion: string; specTag: string } {
  const apiVersion = /ApiVersion = '([^']+)'/.exec(readFileSync(join(esm, "apiVersion.js"), "utf8"))?.[1];
  const specTag = readFileSync(join(esm, "..", "OPENAPI_VERSION"), "utf8").trim();
  if (!apiVersion) throw new Error("no ApiVersion in stripe/esm/apiVersion.js");
  return { apiVersion, specTag };
}
