/**
 * Refreshes `stripe-openapi.subset.json`: the part of Stripe's published OpenAPI specification (the
 * public `stripe/openapi` repository, `openapi/spec3.json` and `openapi/fixtures3.json`) that the
 * Stripe contract check (`stripe-contract.ts`) needs, copied mechanically so the schemas stay Stripe's:
 *
 * - the operations in OPERATIONS (every call the gateway makes, and the stand-in's other endpoints);
 * - the component schemas in KEEP, whole;
 * - a `$ref` to any other component becomes `{ "not": {}, "title": "pruned: <name>" }`: nothing
 *   validates against it. The stand-in never sends those objects (it answers `null` or leaves the
 *   optional field out); if it ever does, the check fails and the object's schema belongs in KEEP;
 * - `description`, `summary` and `x-*` keys are dropped (prose and Stripe's SDK hints, not shape);
 * - the example objects of fixtures3.json for the object types in FIXTURES.
 *
 * Usage (with copies of the two files from the tag or commit to record):
 *   npx tsx test/contract/extract-stripe-openapi.ts <spec3.json> <fixtures3.json> <tag> <commit> [note]
 *   npx biome format --write test/contract/stripe-openapi.subset.json   # the repository's JSON style
 * The API version recorded is the spec's own `info.version`. Match it to the version the `stripe`
 * package pins (`node_modules/stripe/OPENAPI_VERSION` names the spec tag it was generated from).
 * The operations of subset-from-package-types.ts (products, prices, subscriptions, invoices, events,
 * checkout sessions) are not in OPERATIONS yet: re-run that script after this one, or, with the full
 * spec at hand, move them here (and their schemas to KEEP) so Stripe's own schemas replace them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const OPERATIONS = [
  ["post", "/v1/customers"],
  ["get", "/v1/customers/{customer}"],
  ["get", "/v1/billing/meters"],
  ["post", "/v1/billing/meters"],
  ["get", "/v1/billing/meters/{id}"],
  ["get", "/v1/billing/meters/{id}/event_summaries"],
  ["post", "/v1/billing/meter_events"],
] as const;

const KEEP = [
  "address",
  "api_errors",
  "billing.meter",
  "billing.meter_event",
  "billing.meter_event_summary",
  "billing_meter_resource_aggregation_settings",
  "billing_meter_resource_billing_meter_status_transitions",
  "billing_meter_resource_billing_meter_value",
  "billing_meter_resource_customer_mapping_settings",
  "customer",
  "error",
  "invoice_setting_custom_field",
  "invoice_setting_customer_rendering_options",
  "invoice_setting_customer_setting",
];

const FIXTURES = ["billing.meter", "billing.meter_event", "billing.meter_event_summary", "customer"];

const REF = "#/components/schemas/";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `names`: the keys of `node` are property names (inside `properties` or `encoding`), not keywords. */
function strip(node: Json, names = false): Json {
  if (Array.isArray(node)) return node.map((item) => strip(item));
  if (node === null || typeof node !== "object") return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (!names && (key === "description" || key === "summary" || key.startsWith("x-"))) continue;
    if (!names && key === "$ref" && typeof value === "string") {
      if (!value.startsWith(REF)) throw new Error(`unexpected $ref ${value}`);
      const name = value.slice(REF.length);
      if (!KEEP.includes(name)) return { not: {}, title: `pruned: ${name}` };
    }
    out[key] = strip(value, !names && (key === "properties" || key === "encoding"));
  }
  return out;
}

interface Spec {
  openapi: string;
  info: { title: string; version: string };
  paths?: Record<string, Record<string, Json>>;
  components?: { schemas?: Record<string, Json> };
}

function extract(spec: Spec, fixtures: { resources?: Record<string, Json> }, source: Record<string, string>) {
  const paths: Record<string, Record<string, Json>> = {};
  for (const [method, path] of OPERATIONS) {
    const operation = spec.paths?.[path]?.[method];
    if (!operation) throw new Error(`${method.toUpperCase()} ${path} is not in the spec`);
    paths[path] = { ...paths[path], [method]: strip(operation) };
  }
  const schemas: Record<string, Json> = {};
  for (const name of KEEP) {
    const schema = spec.components?.schemas?.[name];
    if (!schema) throw new Error(`components.schemas.${name} is not in the spec`);
    schemas[name] = strip(schema);
  }
  const examples: Record<string, Json> = {};
  for (const name of FIXTURES) {
    const fixture = fixtures.resources?.[name];
    if (!fixture) throw new Error(`fixtures3.json has no resource ${name}`);
    examples[name] = fixture;
  }
  return {
    "x-source": {
      repository: "stripe/openapi",
      files: "openapi/spec3.json, openapi/fixtures3.json",
      ...source,
      license: "MIT, Copyright (c) 2011- Stripe, Inc.: test/contract/stripe-openapi.LICENSE",
      apiVersion: spec.info.version,
      extractedBy: "test/contract/extract-stripe-openapi.ts",
    },
    openapi: spec.openapi,
    info: { title: spec.info.title, version: spec.info.version },
    paths,
    components: { schemas },
    "x-fixtures": examples,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [specFile, fixturesFile, tag, commit, note] = process.argv.slice(2);
  if (!specFile || !fixturesFile || !tag || !commit) {
    console.error("usage: extract-stripe-openapi.ts <spec3.json> <fixtures3.json> <tag> <commit> [note]");
    process.exit(2);
  }
  const spec = JSON.parse(readFileSync(specFile, "utf8")) as Spec;
  const fixtures = JSON.parse(readFileSync(fixturesFile, "utf8")) as { resources?: Record<string, Json> };
  const subset = extract(spec, fixtures, { tag, commit, ...(note ? { note } : {}) });
  const out = fileURLToPath(new URL("./stripe-openapi.subset.json", import.meta.url));
  writeFileSync(out, `${JSON.stringify(subset, null, 2)}\n`);
  console.log(
    `wrote ${out}: ${OPERATIONS.length} operations, ${KEEP.length} schemas, API ${spec.info.version}`,
  );
}
