/**
 * The field names the pinned `stripe` package's TypeScript types give an object or a params hash.
 * The package is generated from a later tag of Stripe's spec than the vendored subset (see the
 * subset's `x-source`), so comparing the two shows whether the fields the gateway touches differ
 * between them. Read with the TypeScript parser (syntax only, no type-check), from the package's
 * declaration files.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** The installed package (its `exports` do not expose the declaration files or package.json). */
const esm = fileURLToPath(new URL("../../node_modules/stripe/esm/", import.meta.url));

function interfaces(file: string): Map<string, ts.InterfaceDeclaration> {
  const source = ts.createSourceFile(
    file,
    readFileSync(join(esm, file), "utf8"),
    ts.ScriptTarget.Latest,
    true,
  );
  const found = new Map<string, ts.InterfaceDeclaration>();
  const visit = (node: ts.Node) => {
    // The first declaration of a name wins: nested namespaces reuse short names (`Meter.CustomerMapping`).
    if (ts.isInterfaceDeclaration(node) && !found.has(node.name.text)) found.set(node.name.text, node);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The property names of `name` in `file` (relative to the package's esm/), including `PaginationParams`'. */
export function typeFields(file: string, name: string): string[] {
  const declaration = interfaces(file).get(name);
  if (!declaration) throw new Error(`no interface ${name} in stripe/esm/${file}`);
  const own = declaration.members.filter(ts.isPropertySignature).map((m) => m.name.getText());
  const paginated = declaration.heritageClauses?.some((c) =>
    c.types.some((t) => t.getText() === "PaginationParams"),
  );
  return paginated ? [...own, ...typeFields("shared.d.ts", "PaginationParams")] : own;
}

/** The `version` the package pins (its `apiVersion.js`) and the spec tag it was generated from. */
export function packageVersions(): { apiVersion: string; specTag: string } {
  const apiVersion = /ApiVersion = '([^']+)'/.exec(readFileSync(join(esm, "apiVersion.js"), "utf8"))?.[1];
  const specTag = readFileSync(join(esm, "..", "OPENAPI_VERSION"), "utf8").trim();
  if (!apiVersion) throw new Error("no ApiVersion in stripe/esm/apiVersion.js");
  return { apiVersion, specTag };
}
