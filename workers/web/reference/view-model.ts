/**
 * OpenAPI 3.0 / 3.1 document → the view model the API reference pages render (pure, no I/O).
 *
 * A document is operator or third-party input, so nothing here trusts its shape: every field is read
 * defensively (a missing or mistyped field is skipped, never a throw), every string stays a string
 * (the JSX escapes it; descriptions are shown as text, never as Markdown or HTML), local `$ref`s are
 * resolved with a guard against cycles, depth and total size (a document can make a schema tree
 * exponential by referring to the same wide schema at every level), and 3.0's `nullable: true` and
 * 3.1's `type: [..., "null"]` / `anyOf: [..., {type: "null"}]` become one `nullable` flag.
 */

/** The HTTP methods an OpenAPI path item may hold, in the order the reference lists them. */
const METHODS = ["get", "post", "put", "patch", "delete", "head", "options", "trace"] as const;

/** Nested schemas shown below one operation's parameter, body or response before "…" stands in. */
export const MAX_SCHEMA_DEPTH = 6;
/** Operations shown per page (a 1 MiB document can hold tens of thousands of tiny ones). */
export const MAX_OPERATIONS = 1_000;
/** Schema nodes built for one whole document; past it schemas are cut short (a `truncated` node). */
export const MAX_SCHEMA_NODES = 20_000;

/** One schema, as the reference shows it. */
export interface SchemaView {
  /** What it is, in words: `string`, `integer`, `array`, `object`, `string | integer`, `any`. */
  type: string;
  /** The name of the `$ref`'d component it came from (`Key` for `#/components/schemas/Key`). */
  ref?: string;
  format?: string;
  nullable: boolean;
  deprecated: boolean;
  description: string;
  /** Allowed values (`enum`, or 3.1's `const`), as JSON text. */
  enum?: string[];
  /** The `default`, as JSON text. */
  defaultValue?: string;
  /** Object members, in document order. */
  properties?: PropertyView[];
  /** What an array holds. */
  items?: SchemaView;
  /** `oneOf` / `anyOf` / `allOf` alternatives (a `null` alternative is folded into `nullable`). */
  variants?: { kind: "oneOf" | "anyOf" | "allOf"; schemas: SchemaView[] };
  /** The `$ref` points back into a schema being shown (shown by name only). */
  cycle?: boolean;
  /** Depth or size limit reached: the rest is not shown. */
  truncated?: boolean;
  /** A `$ref` that is not local (`other.json#/X`), or local but pointing nowhere. */
  unresolved?: string;
}

export interface PropertyView {
  name: string;
  required: boolean;
  schema: SchemaView;
}

export interface ParameterView {
  name: string;
  /** `path`, `query`, `header` or `cookie`. */
  in: string;
  required: boolean;
  deprecated: boolean;
  description: string;
  schema: SchemaView;
}

export interface ContentView {
  mediaType: string;
  schema?: SchemaView;
}

export interface RequestBodyView {
  required: boolean;
  description: string;
  contents: ContentView[];
  /** A JSON skeleton of the first JSON body (its example, or one built from the schema), for curl and "try it". */
  example?: string;
}

export interface ResponseView {
  /** `200`, `4XX`, `default`. */
  status: string;
  description: string;
  contents: ContentView[];
}

export interface OperationView {
  /** `op-<method>-<path slug>`, unique within a page. */
  id: string;
  method: (typeof METHODS)[number];
  path: string;
  summary: string;
  description: string;
  deprecated: boolean;
  parameters: ParameterView[];
  requestBody?: RequestBodyView;
  responses: ResponseView[];
}

export interface TagGroupView {
  name: string;
  description: string;
  operations: OperationView[];
}

export interface ReferenceView {
  title: string;
  version: string;
  description: string;
  /** `3.0` or `3.1`. */
  openapi: string;
  groups: TagGroupView[];
  /**
   * The requests the API itself sends (3.1's `webhooks`), one per webhook and method; `path` is the
   * webhook's name (`key.created`). Filtered by `tags` like the operations.
   */
  webhooks: OperationView[];
  /** Whether some schema or operation was left out by a size limit. */
  truncated: boolean;
}

export interface BuildOptions {
  /** Only operations with one of these tags (e.g. `["Tenant API"]`); default: all. */
  tags?: readonly string[];
  /** Ids already used on the page (another reference above this one); this build adds its own. */
  idsTaken?: Set<string>;
}

/** Why a document cannot be shown, in words fit for a page. */
export class NotOpenApiError extends Error {}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): string => (typeof v === "string" ? v : "");
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The operations a tag group holds when no tag names one. */
export const UNTAGGED = "Other";

/**
 * Builds the reference view of an OpenAPI 3.0 or 3.1 document.
 * @throws NotOpenApiError when `doc` is not an object with `openapi: "3.0.x" | "3.1.x"` (Swagger 2.0 included).
 */
export function buildReference(doc: unknown, options: BuildOptions = {}): ReferenceView {
  if (!isObj(doc)) throw new NotOpenApiError("The document is not a JSON object.");
  const version = text(doc.openapi);
  const match = /^3\.([01])(\.|$)/.exec(version);
  if (!match) {
    throw new NotOpenApiError(
      doc.swagger !== undefined
        ? "The document is Swagger 2.0; only OpenAPI 3.0 and 3.1 are shown."
        : "The document is not an OpenAPI 3.0 or 3.1 document.",
    );
  }
  const ctx = new Context(doc);
  const info = isObj(doc.info) ? doc.info : {};
  const ids = options.idsTaken ?? new Set<string>();
  const wanted = options.tags ? new Set(options.tags) : undefined;

  const groups = new Map<string, TagGroupView>();
  for (const tag of asArray(doc.tags)) {
    if (!isObj(tag) || !text(tag.name)) continue;
    const name = text(tag.name);
    if (!groups.has(name)) groups.set(name, { name, description: text(tag.description), operations: [] });
  }

  const paths = isObj(doc.paths) ? doc.paths : {};
  for (const [path, rawItem] of Object.entries(paths)) {
    const item = ctx.deref(rawItem);
    if (!isObj(item)) continue;
    const shared = asArray(item.parameters);
    for (const method of METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      if (ids.size >= MAX_OPERATIONS) {
        ctx.truncated = true;
        break;
      }
      const tags = asArray(op.tags).map(text).filter(Boolean);
      if (wanted && !tags.some((t) => wanted.has(t))) continue;
      // An operation with several tags is shown once, under its first (wanted) tag: ids stay unique.
      const tag = (wanted ? tags.find((t) => wanted.has(t)) : tags[0]) ?? UNTAGGED;
      let group = groups.get(tag);
      if (!group) {
        group = { name: tag, description: "", operations: [] };
        groups.set(tag, group);
      }
      group.operations.push(buildOperation(ctx, method, path, item, op, shared, ids));
    }
  }

  const webhooks: OperationView[] = [];
  const hooks = isObj(doc.webhooks) ? doc.webhooks : {};
  for (const [name, rawItem] of Object.entries(hooks)) {
    const item = ctx.deref(rawItem);
    if (!isObj(item)) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      if (ids.size >= MAX_OPERATIONS) {
        ctx.truncated = true;
        break;
      }
      const tags = asArray(op.tags).map(text).filter(Boolean);
      if (wanted && !tags.some((t) => wanted.has(t))) continue;
      webhooks.push(buildOperation(ctx, method, name, item, op, asArray(item.parameters), ids));
    }
  }

  return {
    title: text(info.title) || "API reference",
    version: text(info.version),
    description: text(info.description),
    openapi: `3.${match[1]}`,
    groups: [...groups.values()].filter((g) => g.operations.length > 0),
    webhooks,
    truncated: ctx.truncated,
  };
}

/** `op-<method>-<path slug>`: `/gateway/v1/keys/{id}` → `op-delete-gateway-v1-keys-id`. */
export function operationId(method: string, path: string, taken: Set<string>): string {
  const slug = path
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  const base = `op-${method}-${slug || "root"}`;
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  taken.add(id);
  return id;
}

function buildOperation(
  ctx: Context,
  method: OperationView["method"],
  path: string,
  item: Obj,
  op: Obj,
  shared: unknown[],
  ids: Set<string>,
): OperationView {
  // Operation parameters override the path item's of the same name and location.
  const byKey = new Map<string, ParameterView>();
  for (const raw of [...shared, ...asArray(op.parameters)]) {
    const p = ctx.deref(raw);
    if (!isObj(p) || !text(p.name) || !text(p.in)) continue;
    const location = text(p.in);
    byKey.set(`${location}:${text(p.name)}`, {
      name: text(p.name),
      in: location,
      required: location === "path" || p.required === true,
      deprecated: p.deprecated === true,
      description: text(p.description),
      schema: ctx.schema(p.schema ?? firstContentSchema(p.content), 0, []),
    });
  }

  const responses: ResponseView[] = [];
  const rawResponses = isObj(op.responses) ? op.responses : {};
  for (const [status, raw] of Object.entries(rawResponses)) {
    const r = ctx.deref(raw);
    if (!isObj(r)) continue;
    responses.push({ status, description: text(r.description), contents: contents(ctx, r.content) });
  }

  let requestBody: RequestBodyView | undefined;
  const body = ctx.deref(op.requestBody);
  if (isObj(body)) {
    requestBody = {
      required: body.required === true,
      description: text(body.description),
      contents: contents(ctx, body.content),
      example: bodyExample(ctx, body.content),
    };
  }

  return {
    id: operationId(method, path, ids),
    method,
    path,
    summary: text(op.summary) || text(item.summary),
    description: text(op.description) || text(item.description),
    deprecated: op.deprecated === true,
    parameters: [...byKey.values()],
    requestBody,
    responses,
  };
}

function firstContentSchema(content: unknown): unknown {
  if (!isObj(content)) return undefined;
  const first = Object.values(content).find(isObj);
  return first?.schema;
}

function contents(ctx: Context, content: unknown): ContentView[] {
  if (!isObj(content)) return [];
  return Object.entries(content).map(([mediaType, media]) => ({
    mediaType,
    schema: isObj(media) && media.schema !== undefined ? ctx.schema(media.schema, 0, []) : undefined,
  }));
}

/** The JSON example of a body: the document's own `example` / `examples`, else a skeleton of its schema. */
function bodyExample(ctx: Context, content: unknown): string | undefined {
  if (!isObj(content)) return undefined;
  const entry = Object.entries(content).find(([type]) => /json/i.test(type));
  if (!entry || !isObj(entry[1])) return undefined;
  const media = entry[1];
  let value: unknown = media.example;
  if (value === undefined && isObj(media.examples)) {
    const first = ctx.deref(Object.values(media.examples)[0]);
    if (isObj(first)) value = first.value;
  }
  if (value === undefined) value = ctx.skeleton(media.schema, 0, []);
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return undefined;
  }
}

/** What resolves `$ref`s and counts nodes for one document. */
class Context {
  truncated = false;
  private nodes = 0;
  private skeletonNodes = 0;
  constructor(private readonly doc: Obj) {}

  /** A local JSON Pointer (`#/components/schemas/Key`), or undefined. */
  resolve(ref: string): unknown {
    if (!ref.startsWith("#")) return undefined;
    let node: unknown = this.doc;
    for (const raw of ref.slice(1).split("/").slice(1)) {
      const key = decodePointer(raw);
      if (key === undefined) return undefined;
      if (Array.isArray(node) && /^\d+$/.test(key)) node = node[Number(key)];
      else if (isObj(node) && Object.hasOwn(node, key)) node = node[key];
      else return undefined;
    }
    return node;
  }

  /** Follows `$ref` chains of a parameter, response, body or path item (at most 10 hops: a chain can loop). */
  deref(value: unknown): unknown {
    let node = value;
    for (let hops = 0; hops < 10 && isObj(node) && typeof node.$ref === "string"; hops++) {
      node = this.resolve(node.$ref);
    }
    return isObj(node) && typeof node.$ref === "string" ? undefined : node;
  }

  /** The view of a schema; `seen` holds the `$ref`s being expanded above it (cycle guard). */
  schema(raw: unknown, depth: number, seen: readonly string[]): SchemaView {
    const view: SchemaView = { type: "any", nullable: false, deprecated: false, description: "" };
    if (raw === true || raw === undefined) return view;
    if (raw === false) return { ...view, type: "never" };
    if (!isObj(raw)) return view;
    if (++this.nodes > MAX_SCHEMA_NODES) {
      this.truncated = true;
      return { ...view, truncated: true };
    }

    const node: Obj = raw;
    if (typeof raw.$ref === "string") {
      const ref = raw.$ref;
      const name = refName(ref);
      if (seen.includes(ref)) return { ...view, type: name, ref: name, cycle: true };
      const target = this.resolve(ref);
      if (!isObj(target) && typeof target !== "boolean")
        return { ...view, type: name, ref: name, unresolved: ref };
      const inner = this.schema(target, depth, [...seen, ref]);
      // 3.1 allows siblings next to $ref (a description, `deprecated`): they win over the target's.
      return {
        ...inner,
        ref: name,
        description: text(raw.description) || inner.description,
        deprecated: raw.deprecated === true || inner.deprecated,
      };
    }
    if (depth >= MAX_SCHEMA_DEPTH) return { ...view, type: typeWords(node).type, truncated: true };

    const words = typeWords(node);
    view.type = words.type;
    view.nullable = words.nullable || node.nullable === true;
    view.deprecated = node.deprecated === true;
    view.description = text(node.description) || text(node.title);
    if (typeof node.format === "string") view.format = node.format;
    if (Array.isArray(node.enum)) view.enum = node.enum.map(jsonText);
    else if (node.const !== undefined) view.enum = [jsonText(node.const)];
    if (node.default !== undefined) view.defaultValue = jsonText(node.default);
    if (view.enum?.includes("null")) {
      view.nullable = true;
      view.enum = view.enum.filter((v) => v !== "null");
    }

    if (isObj(node.properties)) {
      const required = new Set(asArray(node.required).map(text));
      view.properties = Object.entries(node.properties).map(([name, child]) => ({
        name,
        required: required.has(name),
        schema: this.schema(child, depth + 1, seen),
      }));
    }
    if (node.items !== undefined && !Array.isArray(node.items)) {
      view.items = this.schema(node.items, depth + 1, seen);
    }

    for (const kind of ["oneOf", "anyOf", "allOf"] as const) {
      const list = asArray(node[kind]);
      if (list.length === 0) continue;
      const nonNull = list.filter((s) => !isNullSchema(s));
      if (nonNull.length < list.length) view.nullable = true;
      const schemas = nonNull.map((s) => this.schema(s, depth + 1, seen));
      // `anyOf: [X, {type: "null"}]` (how 3.1 and zod write "X or null") is simply a nullable X, and
      // `allOf: [X]` (how 3.0 puts a description or `nullable` next to a $ref) is X.
      if (schemas.length === 1 && view.type === "any" && !view.properties) {
        const only = schemas[0] as SchemaView;
        return {
          ...only,
          nullable: view.nullable || only.nullable,
          deprecated: view.deprecated || only.deprecated,
          description: view.description || only.description,
        };
      }
      if (schemas.length > 0) {
        view.variants = { kind, schemas };
        if (view.type === "any") view.type = kind === "allOf" ? "all of" : "one of";
      }
      break;
    }
    return view;
  }

  /** A JSON value shaped like the schema (an example body): the schema's own example first. */
  skeleton(raw: unknown, depth: number, seen: readonly string[]): unknown {
    if (!isObj(raw) || depth > MAX_SCHEMA_DEPTH || ++this.skeletonNodes > MAX_SCHEMA_NODES) return null;
    if (typeof raw.$ref === "string") {
      if (seen.includes(raw.$ref)) return null;
      return this.skeleton(this.resolve(raw.$ref), depth, [...seen, raw.$ref]);
    }
    if (raw.example !== undefined) return raw.example;
    if (Array.isArray(raw.examples) && raw.examples.length > 0) return raw.examples[0];
    if (raw.default !== undefined) return raw.default;
    if (Array.isArray(raw.enum) && raw.enum.length > 0) return raw.enum[0];
    if (raw.const !== undefined) return raw.const;
    const variant = asArray(raw.oneOf ?? raw.anyOf).find((s) => !isNullSchema(s));
    if (variant !== undefined) return this.skeleton(variant, depth + 1, seen);
    if (Array.isArray(raw.allOf)) {
      const merged: Obj = {};
      for (const part of raw.allOf) {
        const value = this.skeleton(part, depth + 1, seen);
        if (isObj(value)) Object.assign(merged, value);
      }
      return merged;
    }
    const type = typeWords(raw).first;
    if (type === "object" || isObj(raw.properties)) {
      const out: Obj = {};
      const props = isObj(raw.properties) ? raw.properties : {};
      for (const [name, child] of Object.entries(props)) out[name] = this.skeleton(child, depth + 1, seen);
      return out;
    }
    if (type === "array") return [this.skeleton(raw.items, depth + 1, seen)].filter((v) => v !== null);
    if (type === "integer" || type === "number") return 0;
    if (type === "boolean") return false;
    if (type === "string") return raw.format === "date-time" ? "2026-01-01T00:00:00Z" : "string";
    return null;
  }
}

/** `type` in words, and whether it admits null (3.1's `type: ["string", "null"]`). */
function typeWords(node: Obj): { type: string; first: string; nullable: boolean } {
  const list = (Array.isArray(node.type) ? node.type : [node.type]).map(text).filter(Boolean);
  const nonNull = list.filter((t) => t !== "null");
  const nullable = nonNull.length < list.length;
  let type = nonNull.join(" | ");
  if (!type) {
    if (isObj(node.properties)) type = "object";
    else if (node.items !== undefined) type = "array";
    else if (list.length > 0) type = "null";
    else type = "any";
  }
  return { type, first: nonNull[0] ?? (type === "null" ? "" : type), nullable: nullable && type !== "null" };
}

function isNullSchema(s: unknown): boolean {
  return (
    isObj(s) && (s.type === "null" || (Array.isArray(s.enum) && s.enum.length === 1 && s.enum[0] === null))
  );
}

function refName(ref: string): string {
  const last = ref.split("/").pop() ?? ref;
  return decodePointer(last) ?? last;
}

function decodePointer(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment).replace(/~1/g, "/").replace(/~0/g, "~");
  } catch {
    return undefined;
  }
}

function jsonText(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * The curl command of an operation against `baseUrl` (the gateway): path parameters as `{name}`
 * placeholders, required query parameters as `name=<name>`, the key from `$GW_TEST_KEY`, and the
 * body example. Every piece is single-quoted for a POSIX shell.
 */
export function curlCommand(op: OperationView, baseUrl: string): string {
  const query = op.parameters
    .filter((p) => p.in === "query" && p.required)
    .map((p) => `${encodeURIComponent(p.name)}=<${p.name}>`)
    .join("&");
  const url = `${baseUrl.replace(/\/+$/, "")}${op.path}${query ? `?${query}` : ""}`;
  const lines = [
    `curl -X ${op.method.toUpperCase()} ${shellQuote(url)}`,
    `-H "Authorization: Bearer $GW_TEST_KEY"`,
  ];
  for (const p of op.parameters) {
    if (p.in === "header" && p.required) lines.push(`-H ${shellQuote(`${p.name}: <${p.name}>`)}`);
  }
  if (op.requestBody?.example !== undefined) {
    lines.push(`-H 'Content-Type: application/json'`, `-d ${shellQuote(op.requestBody.example)}`);
  }
  return lines.join(" \\\n  ");
}

/** `'…'` with every `'` written as `'\''`: nothing inside is expanded by the shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
