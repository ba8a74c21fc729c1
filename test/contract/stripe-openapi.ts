/**
 * Checks one HTTP exchange with Stripe's v1 API against Stripe's published OpenAPI specification
 * (the vendored subset `stripe-openapi.subset.json`, see `extract-stripe-openapi.ts`) and Stripe's
 * example objects (fixtures3.json, in the same file):
 * - the request: form body (POST) or query string (GET), decoded from bracket notation, against the
 *   operation's request-body schema or query parameters (unknown parameters are refused there, as
 *   Stripe's schemas say `additionalProperties: false`); form values are strings on the wire, so
 *   they are coerced to the schema's integer/number/boolean types before the check;
 * - the response: a 200 body against the operation's 200 schema, any other against its `default`
 *   (Stripe's error envelope); never coerced, so a number where the spec says string fails;
 * - the fields of each object in a 200 body: exactly the fields of Stripe's example object of that
 *   type (the schemas allow extra fields; the fixtures show which ones Stripe sends by default);
 * - an event's `data.object` (which the event schema leaves open): against its own type's schema and
 *   example object.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { parseForm } from "../../dev/stripe-standin";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Operation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema: Json }>;
  requestBody?: { content: { "application/x-www-form-urlencoded": { schema: Json } } };
  responses: { "200": ResponseSpec; default: ResponseSpec };
}
type ResponseSpec = { content: { "application/json": { schema: Json } } };

export interface Subset {
  "x-source": Record<string, string>;
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
  "x-fixtures": Record<string, JsonObject>;
}

export const subset = JSON.parse(
  readFileSync(new URL("./stripe-openapi.subset.json", import.meta.url), "utf8"),
) as Subset;

/** One call as it went over the wire. */
export interface Exchange {
  method: string;
  /** Full URL, query string included. */
  url: string;
  /** The raw form body ("" for GET). */
  requestBody: string;
  status: number;
  responseBody: unknown;
}

const DOC = "stripe-openapi";
const REF = "#/components/schemas/";

/**
 * OpenAPI 3.0 → JSON Schema for ajv: `nullable: true` becomes "or null", and `$ref`s point into one
 * shared document of the component schemas. `names`: the keys of `node` are property names.
 */
function toJsonSchema(node: Json, names = false): Json {
  if (Array.isArray(node)) return node.map((item) => toJsonSchema(item));
  if (node === null || typeof node !== "object") return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (!names && key === "nullable") continue;
    if (!names && key === "$ref" && typeof value === "string") {
      out.$ref = `${DOC}#/definitions/${value.slice(REF.length)}`;
      continue;
    }
    out[key] = toJsonSchema(value, !names && key === "properties");
  }
  return !names && node.nullable === true ? { anyOf: [out, { type: "null" }] } : out;
}

function newAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ allErrors: true, coerceTypes, strict: true });
  for (const format of ["unix-time", "currency", "decimal"]) ajv.addFormat(format, true);
  const definitions: JsonObject = {};
  for (const [name, schema] of Object.entries(subset.components.schemas))
    definitions[name] = toJsonSchema(schema);
  ajv.addSchema({ $id: DOC, definitions });
  return ajv;
}
const requestAjv = newAjv(true);
const responseAjv = newAjv(false);

interface CompiledOperation {
  method: string;
  template: string;
  pattern: RegExp;
  request: ValidateFunction;
  responses: { ok: ValidateFunction; error: ValidateFunction };
}

function queryParameters(operation: Operation): Json {
  const properties: JsonObject = {};
  const required: string[] = [];
  for (const p of operation.parameters ?? []) {
    if (p.in !== "query") continue;
    properties[p.name] = toJsonSchema(p.schema);
    if (p.required) required.push(p.name);
  }
  return { type: "object", properties, required, additionalProperties: false };
}

const operations: CompiledOperation[] = Object.entries(subset.paths).flatMap(([template, methods]) =>
  Object.entries(methods).map(([method, operation]) => ({
    method: method.toUpperCase(),
    template,
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`),
    request: requestAjv.compile(
      (method === "get"
        ? queryParameters(operation)
        : toJsonSchema(
            operation.requestBody?.content["application/x-www-form-urlencoded"].schema ?? {},
          )) as object,
    ),
    responses: {
      ok: responseAjv.compile(
        toJsonSchema(operation.responses["200"].content["application/json"].schema) as object,
      ),
      error: responseAjv.compile(
        toJsonSchema(operation.responses.default.content["application/json"].schema) as object,
      ),
    },
  })),
);

/** The operation an exchange is an instance of, e.g. "GET /v1/billing/meters/{id}". */
export function operationOf(method: string, pathname: string): string | null {
  const op = operations.find((o) => o.method === method && o.pattern.test(pathname));
  return op ? `${op.method} ${op.template}` : null;
}

/** Bracket-notation lists (`expand[0]=a`) decode as objects with index keys: make them arrays. */
function withArrays(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value);
  if (entries.length > 0 && entries.every(([k], i) => k === String(i)))
    return entries.map(([, v]) => withArrays(v));
  return Object.fromEntries(entries.map(([k, v]) => [k, withArrays(v)]));
}

const describeErrors = (where: string, errors: ErrorObject[] | null | undefined) =>
  (errors ?? []).map(
    (e) => `${where}${e.instancePath || "/"} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ""}`,
  );

/**
 * Fields newer than the example objects of the vendored tag: the pinned stripe package's types (its
 * later spec tag, the API version the stand-in answers) have them, the tag's fixtures do not. Each
 * is also in the schema, which checks its value.
 */
const NEWER_THAN_FIXTURES = new Set([
  "product.tax_details",
  "subscription_item.current_trial",
  "subscription.cancellation_details.feedback_option",
  "subscription.trial_settings.end_behavior.billing_cycle_anchor",
  "checkout.session.allowed_payment_method_types",
]);

/**
 * Fields of the example objects that the pinned package's API version no longer answers (API
 * 2025-03-31 moved an invoice's subscription to `parent.subscription_details`); the schema, which
 * follows the package, does not list them either.
 */
const GONE_SINCE_FIXTURES = new Set(["invoice.subscription"]);

/** Optional fields the example objects happen not to show: `previous_attributes` is on `*.updated` events only. */
const NOT_ALWAYS_SENT = new Set(["event.data.previous_attributes"]);

/** Differences between the fields of `actual` and of Stripe's example object (recursing into sub-objects). */
function fieldDifferences(actual: JsonObject, example: JsonObject, path: string): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(example))
    if (!(key in actual) && !GONE_SINCE_FIXTURES.has(`${path}.${key}`))
      problems.push(`${path}.${key} is missing (Stripe sends it)`);
  for (const key of Object.keys(actual)) {
    if (NEWER_THAN_FIXTURES.has(`${path}.${key}`) || NOT_ALWAYS_SENT.has(`${path}.${key}`)) continue;
    if (!(key in example)) {
      problems.push(`${path}.${key} is not a field of Stripe's ${path} object`);
      continue;
    }
    const [a, e] = [actual[key], example[key]];
    // Maps of caller-chosen keys (metadata, payload) have no fixed fields; an event's object is
    // compared with the example of its own type (contractViolations), not with the example event's.
    if (key === "metadata" || key === "payload" || `${path}.${key}` === "event.data.object") continue;
    if (isObject(a) && isObject(e)) problems.push(...fieldDifferences(a, e, `${path}.${key}`));
  }
  return problems;
}

/** An event's `data.object` against the schema of its own type (the event's schema leaves it open). */
function eventObjectViolations(where: string, event: JsonObject): string[] {
  const object = eventObject(event);
  const type = isObject(object) ? object.object : null;
  const validate =
    typeof type === "string" ? responseAjv.getSchema(`${DOC}#/definitions/${type}`) : undefined;
  if (!validate) return [`${where}: no schema for the ${String(type)} of event ${String(event.type)}`];
  return validate(object) ? [] : describeErrors(`${where} ${String(event.id)} data.object`, validate.errors);
}

/** An event's `data.object` (the snapshot it carries). */
const eventObject = (event: JsonObject): Json => (isObject(event.data) ? (event.data.object ?? null) : null);

const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Every way the exchange departs from Stripe's published contract; empty when it conforms.
 * `request: false` skips the request (for calls that send a bad request on purpose to see the error).
 */
export function contractViolations(exchange: Exchange, options: { request?: boolean } = {}): string[] {
  const url = new URL(exchange.url);
  const op = operations.find((o) => o.method === exchange.method && o.pattern.test(url.pathname));
  if (!op) return [`${exchange.method} ${url.pathname} is not an operation of the vendored spec subset`];
  const where = `${op.method} ${op.template}`;
  const problems: string[] = [];
  if (options.request !== false) {
    const params = withArrays(parseForm(op.method === "GET" ? url.search.slice(1) : exchange.requestBody));
    if (!op.request(params)) problems.push(...describeErrors(`${where} request`, op.request.errors));
  }
  const ok = exchange.status === 200;
  const validate = ok ? op.responses.ok : op.responses.error;
  if (!validate(exchange.responseBody)) {
    problems.push(...describeErrors(`${where} ${exchange.status} response`, validate.errors));
  }
  if (ok && isObject(exchange.responseBody)) {
    const body = exchange.responseBody;
    const listed = body.object === "list" && Array.isArray(body.data) ? body.data : [body];
    const objects = listed.flatMap((o) => (isObject(o) && o.object === "event" ? [o, eventObject(o)] : [o]));
    for (const event of listed.filter((o) => isObject(o) && o.object === "event"))
      problems.push(...eventObjectViolations(`${where} ${exchange.status} response`, event as JsonObject));
    for (const object of objects) {
      if (!isObject(object) || typeof object.object !== "string") continue;
      const example = subset["x-fixtures"][object.object];
      if (!example) problems.push(`${where}: no Stripe example object for ${object.object}`);
      else problems.push(...fieldDifferences(object, example, object.object));
    }
  }
  return problems;
}

/** Validates Stripe's own example object of `type` against its component schema (proves the setup). */
export function fixtureViolations(type: string): string[] {
  const validate = responseAjv.getSchema(`${DOC}#/definitions/${type}`);
  if (!validate) return [`no component schema ${type}`];
  return validate(subset["x-fixtures"][type]) ? [] : describeErrors(`fixture ${type}`, validate.errors);
}

/**
 * Records every call made through `globalThis.fetch` from now on (the stripe package's fetch client
 * takes the global fetch when it is built: build clients after this). `stop()` puts fetch back.
 */
export function recordExchanges(): { exchanges: Exchange[]; stop(): void } {
  const exchanges: Exchange[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const requestBody = request.method === "GET" ? "" : await request.clone().text();
    const response = await realFetch(request);
    const text = await response.clone().text();
    exchanges.push({
      method: request.method,
      url: request.url,
      requestBody,
      status: response.status,
      responseBody: text ? JSON.parse(text) : null,
    });
    return response;
  };
  const stop = () => {
    globalThis.fetch = realFetch;
  };
  return { exchanges, stop };
}
