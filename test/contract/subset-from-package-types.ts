/**
 * Adds to `stripe-openapi.subset.json` the operations and schemas the vendored excerpt of Stripe's
 * spec lacks (products, prices, subscriptions — the gateway's billing calls — and invoices with
 * their lines, events and checkout sessions, stripe-contract-money.ts), written mechanically from Stripe's documented
 * schemas as the pinned `stripe` package carries them: its TypeScript declarations, which Stripe
 * generates from its OpenAPI spec (node_modules/stripe/OPENAPI_VERSION names the tag). The full
 * spec3.json of the vendored tag could not be fetched here; when it can, add these operations to
 * OPERATIONS/KEEP in extract-stripe-openapi.ts and re-extract: Stripe's own schemas replace these.
 *
 * How a declaration becomes a schema: `string` (and `Decimal`) → string; `number` → integer, or
 * number for the fields Stripe types as decimals (`*percent*`, `*_decimal`, `*rate*`); `boolean`;
 * string-literal unions → enum; `X | null` → nullable; `Array<X>` → array; `Metadata` and
 * `{ [key: string]: X }` → a map; `Emptyable<X>` (params) → X or ""; `ApiList<X>` → Stripe's list
 * envelope; a nested interface → an object with its fields (required = not optional); an object of
 * another resource → `$ref` when it is a schema of the subset, else Stripe's id string or a
 * "pruned" schema nothing matches (as the extractor does). Types it cannot read are left open
 * (`{"title": "unread: …"}`) and listed when it runs. Example objects come from fixtures3.json.
 *
 * Usage: npx tsx test/contract/subset-from-package-types.ts <fixtures3.json of the vendored tag>
 *        npx biome format --write test/contract/stripe-openapi.subset.json
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const esm = fileURLToPath(new URL("../../node_modules/stripe/esm/", import.meta.url));

/** [method, path, declaration file, params interface, answer: component name or `list:<component>`]. */
export const PACKAGE_OPERATIONS: Array<[string, string, string, string, string]> = [
  ["get", "/v1/products/{id}", "resources/Products.d.ts", "ProductRetrieveParams", "product"],
  ["post", "/v1/products", "resources/Products.d.ts", "ProductCreateParams", "product"],
  ["get", "/v1/prices", "resources/Prices.d.ts", "PriceListParams", "list:price"],
  ["post", "/v1/prices", "resources/Prices.d.ts", "PriceCreateParams", "price"],
  ["get", "/v1/subscriptions", "resources/Subscriptions.d.ts", "SubscriptionListParams", "list:subscription"],
  ["post", "/v1/subscriptions", "resources/Subscriptions.d.ts", "SubscriptionCreateParams", "subscription"],
  [
    "get",
    "/v1/subscriptions/{subscription_exposed_id}",
    "resources/Subscriptions.d.ts",
    "SubscriptionRetrieveParams",
    "subscription",
  ],
  [
    "post",
    "/v1/subscriptions/{subscription_exposed_id}",
    "resources/Subscriptions.d.ts",
    "SubscriptionUpdateParams",
    "subscription",
  ],
  [
    "delete",
    "/v1/subscriptions/{subscription_exposed_id}",
    "resources/Subscriptions.d.ts",
    "SubscriptionCancelParams",
    "subscription",
  ],
  ["get", "/v1/invoices", "resources/Invoices.d.ts", "InvoiceListParams", "list:invoice"],
  ["get", "/v1/invoices/{invoice}", "resources/Invoices.d.ts", "InvoiceRetrieveParams", "invoice"],
  ["post", "/v1/invoices/{invoice}/pay", "resources/Invoices.d.ts", "InvoicePayParams", "invoice"],
  ["get", "/v1/events", "resources/Events.d.ts", "EventListParams", "list:event"],
  ["get", "/v1/events/{id}", "resources/Events.d.ts", "EventRetrieveParams", "event"],
  [
    "post",
    "/v1/checkout/sessions",
    "resources/Checkout/Sessions.d.ts",
    "Checkout.SessionCreateParams",
    "checkout.session",
  ],
  [
    "get",
    "/v1/checkout/sessions/{session}",
    "resources/Checkout/Sessions.d.ts",
    "Checkout.SessionRetrieveParams",
    "checkout.session",
  ],
  [
    "post",
    "/v1/checkout/sessions/{session}/expire",
    "resources/Checkout/Sessions.d.ts",
    "Checkout.SessionExpireParams",
    "checkout.session",
  ],
];

/** Component name → [declaration file, interface]. */
export const PACKAGE_SCHEMAS: Record<string, [string, string]> = {
  product: ["resources/Products.d.ts", "Product"],
  price: ["resources/Prices.d.ts", "Price"],
  subscription: ["resources/Subscriptions.d.ts", "Subscription"],
  subscription_item: ["resources/SubscriptionItems.d.ts", "SubscriptionItem"],
  plan: ["resources/Plans.d.ts", "Plan"],
  invoice: ["resources/Invoices.d.ts", "Invoice"],
  line_item: ["resources/InvoiceLineItems.d.ts", "InvoiceLineItem"],
  event: ["resources/Events.d.ts", "EventBase"],
  "checkout.session": ["resources/Checkout/Sessions.d.ts", "Session"],
};

/** Other resources' interfaces (by name) → component name, for `$ref`s into the subset. */
const REFS: Record<string, string> = {
  Product: "product",
  Price: "price",
  Subscription: "subscription",
  SubscriptionItem: "subscription_item",
  Plan: "plan",
  Invoice: "invoice",
  InvoiceLineItem: "line_item",
  Customer: "customer",
  Address: "address",
};

/** A declaration file read as named things: `Ns.Name` → interface fields or a type alias. */
interface Declarations {
  interfaces: Map<string, Array<{ name: string; optional: boolean; type: string }>>;
  aliases: Map<string, string>;
}

function readDeclarations(file: string): Declarations {
  const lines = readFileSync(join(esm, file), "utf8").split("\n");
  const out: Declarations = { interfaces: new Map(), aliases: new Map() };
  const scope: Array<{ indent: number; name: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const indent = /^\s*/.exec(line)?.[0].length ?? 0;
    while (scope.length && indent <= (scope.at(-1)?.indent ?? -1) && /^\s*}/.test(line)) scope.pop();
    const qualified = (name: string) => [...scope.map((s) => s.name), name].join(".");
    const ns = /^\s*(?:export )?(?:declare )?namespace (\w+) \{$/.exec(line);
    if (ns?.[1]) {
      scope.push({ indent, name: ns[1] });
      continue;
    }
    const alias = /^\s*(?:export )?(?:declare )?type (\w+)(?:<[^>]+>)? = (.*);$/.exec(line);
    if (alias?.[1] && alias[2]) out.aliases.set(qualified(alias[1]), alias[2]);
    const iface = /^\s*(?:export )?interface (\w+)(?: extends (\w+))? \{$/.exec(line);
    if (!iface?.[1]) continue;
    const fields: Array<{ name: string; optional: boolean; type: string }> = [];
    if (iface[2] === "PaginationParams")
      for (const name of ["ending_before", "limit", "starting_after"])
        fields.push({ name, optional: true, type: name === "limit" ? "number" : "string" });
    const inner = " ".repeat(indent + 4);
    for (i++; i < lines.length && lines[i] !== `${" ".repeat(indent)}}`; i++) {
      const field = new RegExp(`^${inner}(\\w+)(\\??): (.*)$`).exec(lines[i] ?? "");
      if (!field?.[1] || field[3] === undefined) continue;
      let type = field[3];
      // A multi-line inline type (`{ [key: string]: X; }`) ends at the line closing it.
      const open = () => type.split("{").length - type.split("}").length;
      while ((!type.endsWith(";") || open() > 0) && i + 1 < lines.length)
        type += ` ${(lines[++i] ?? "").trim()}`;
      fields.push({ name: field[1], optional: field[2] === "?", type: type.slice(0, -1).trim() });
    }
    out.interfaces.set(qualified(iface[1]), fields);
  }
  return out;
}

const unread = new Set<string>();
/** Objects nested deeper than this stay open (any object): the deep option trees of params are not what the checks are about. */
const MAX_DEPTH = 3;
const string: Json = { maxLength: 5000, type: "string" };
const map = (values: Json): Json => ({ additionalProperties: values, type: "object" });
const pruned = (name: string): Json => ({ not: {}, title: `pruned: ${name}` });

/** Splits `a | b<c | d> | e` at the top level only. */
function topLevel(type: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < type.length; i++) {
    const c = type[i];
    if (c === "<" || c === "{" || c === "(") depth++;
    else if (c === ">" || c === "}" || c === ")") depth--;
    else if (depth === 0 && type.startsWith(separator, i)) {
      parts.push(type.slice(start, i).trim());
      start = i + separator.length;
    }
  }
  parts.push(type.slice(start).trim());
  return parts;
}

/** The schema of a TypeScript type written in `scope` (a namespace path) of `d`. */
function schemaOf(d: Declarations, type: string, scope: string[], field: string, depth: number): Json {
  const alternatives = topLevel(type, " | ");
  const nullable = alternatives.includes("null");
  const rest = alternatives.filter((a) => a !== "null");
  let schema: Json;
  if (rest.length > 0 && rest.every((a) => /^'[^']*'$/.test(a))) {
    schema = { enum: rest.map((a) => a.slice(1, -1)), type: "string" };
  } else if (rest.length === 1) {
    schema = single(d, rest[0] ?? "", scope, field, depth);
  } else {
    schema = { anyOf: rest.map((a) => single(d, a, scope, field, depth)) };
  }
  return nullable ? { ...(schema as Record<string, Json>), nullable: true } : schema;
}

function single(d: Declarations, type: string, scope: string[], field: string, depth: number): Json {
  if (type === "string" || type === "Decimal" || type === "OtherString") return string;
  if (type === "boolean") return { type: "boolean" };
  if (type === "number")
    return /percent|_decimal|rate/.test(field) ? { type: "number" } : { type: "integer" };
  if (/^'[^']*'$/.test(type)) return { enum: [type.slice(1, -1)], type: "string" };
  if (type === "Metadata" || type === "MetadataParam" || type === "Stripe.Metadata")
    return map({ maxLength: 500, type: "string" });
  const generic = /^(\w+)<(.*)>$/.exec(type);
  if (generic?.[1] && generic[2] !== undefined) {
    const [outer, inner] = [generic[1], generic[2]];
    if (outer === "Array") return { items: schemaOf(d, inner, scope, field, depth), type: "array" };
    if (outer === "Emptyable")
      return { anyOf: [schemaOf(d, inner, scope, field, depth), { enum: [""], type: "string" }] };
    if (outer === "ApiList")
      return {
        properties: {
          data: { items: schemaOf(d, inner, scope, field, depth), type: "array" },
          has_more: { type: "boolean" },
          object: { enum: ["list"], type: "string" },
          url: string,
        },
        required: ["data", "has_more", "object", "url"],
        type: "object",
      };
  }
  const index = /^\{ \[key: string\]: (.*); \}$/.exec(type);
  if (index?.[1]) return map(schemaOf(d, index[1], scope, field, depth));
  const ref = REFS[type];
  if (ref) return { $ref: `#/components/schemas/${ref}` };
  // A name in this file: the innermost enclosing namespace that declares it.
  for (let n = scope.length; n >= 0; n--) {
    const name = [...scope.slice(0, n), type].join(".");
    const alias = d.aliases.get(name);
    if (alias) return schemaOf(d, alias, name.split(".").slice(0, -1), field, depth);
    const fields = d.interfaces.get(name);
    if (fields) {
      if (depth >= MAX_DEPTH) return { title: `not detailed: ${name}`, type: "object" };
      return objectSchema(d, fields, name.split("."), depth + 1, false);
    }
  }
  if (/^(Deleted)?[A-Z]\w*$/.test(type)) return pruned(type);
  unread.add(type);
  return { title: `unread: ${type}` };
}

function objectSchema(
  d: Declarations,
  fields: Array<{ name: string; optional: boolean; type: string }>,
  scope: string[],
  depth: number,
  closed: boolean,
): Json {
  const properties: Record<string, Json> = {};
  const required: string[] = [];
  for (const f of fields) {
    properties[f.name] = schemaOf(d, f.type, scope, f.name, depth);
    if (!f.optional) required.push(f.name);
  }
  return {
    ...(closed ? { additionalProperties: false } : {}),
    properties,
    ...(required.length ? { required } : {}),
    type: "object",
  };
}

const declarationsOf = new Map<string, Declarations>();
function declarations(file: string): Declarations {
  const known = declarationsOf.get(file);
  if (known) return known;
  const d = readDeclarations(file);
  declarationsOf.set(file, d);
  return d;
}

function fieldsOf(file: string, name: string) {
  const fields = declarations(file).interfaces.get(name);
  if (!fields) throw new Error(`no interface ${name} in stripe/esm/${file}`);
  return fields;
}

const errorAnswer = { content: { "application/json": { schema: { $ref: "#/components/schemas/error" } } } };

function operation(file: string, params: string, answer: string, method: string, path: string): Json {
  const d = declarations(file);
  const request = objectSchema(d, fieldsOf(file, params), params.split(".").slice(0, -1), 0, true) as Record<
    string,
    Json
  >;
  const listed = answer.startsWith("list:") ? answer.slice(5) : null;
  const ok: Json = listed
    ? {
        properties: {
          data: { items: { $ref: `#/components/schemas/${listed}` }, type: "array" },
          has_more: { type: "boolean" },
          object: { enum: ["list"], type: "string" },
          url: { maxLength: 5000, pattern: `^${path}`, type: "string" },
        },
        required: ["data", "has_more", "object", "url"],
        type: "object",
      }
    : { $ref: `#/components/schemas/${answer}` };
  const pathParameters = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    in: "path",
    name: m[1] ?? "",
    required: true,
    schema: string,
  }));
  const requiredNames = (request.required ?? []) as string[];
  const properties = request.properties as Record<string, Json>;
  const queryParameters =
    method === "get"
      ? Object.entries(properties).map(([name, schema]) => ({
          in: "query",
          name,
          required: requiredNames.includes(name),
          schema,
        }))
      : [];
  return {
    "x-derived-from": `stripe/esm/${file} ${params}`,
    parameters: [...pathParameters, ...queryParameters],
    ...(method === "get"
      ? {}
      : { requestBody: { content: { "application/x-www-form-urlencoded": { schema: request } } } }),
    responses: { "200": { content: { "application/json": { schema: ok } } }, default: errorAnswer },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [fixturesFile] = process.argv.slice(2);
  if (!fixturesFile) {
    console.error("usage: subset-from-package-types.ts <fixtures3.json>");
    process.exit(2);
  }
  const fixtures = JSON.parse(readFileSync(fixturesFile, "utf8")) as { resources: Record<string, Json> };
  const out = fileURLToPath(new URL("./stripe-openapi.subset.json", import.meta.url));
  const subset = JSON.parse(readFileSync(out, "utf8"));
  for (const [method, path, file, params, answer] of PACKAGE_OPERATIONS)
    subset.paths[path] = { ...subset.paths[path], [method]: operation(file, params, answer, method, path) };
  for (const [name, [file, iface]] of Object.entries(PACKAGE_SCHEMAS)) {
    subset.components.schemas[name] = objectSchema(declarations(file), fieldsOf(file, iface), [], 0, false);
    const example = fixtures.resources[name];
    if (!example) throw new Error(`fixtures3.json has no resource ${name}`);
    subset["x-fixtures"][name] = example;
  }
  const version = readFileSync(join(esm, "..", "OPENAPI_VERSION"), "utf8").trim();
  subset["x-source"].derivedFromPackageTypes =
    `Operations marked x-derived-from and the schemas ${Object.keys(PACKAGE_SCHEMAS).join(", ")}: written from the stripe package's generated declarations (spec ${version}) by test/contract/subset-from-package-types.ts, not copied from spec3.json; their example objects are fixtures3.json's of the tag above.`;
  writeFileSync(out, `${JSON.stringify(subset, null, 2)}\n`);
  console.log(`wrote ${out}; types left open: ${[...unread].sort().join(", ") || "none"}`);
}
