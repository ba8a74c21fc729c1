/**
 * The OpenAPI → reference view model (workers/web/reference/view-model.ts): tag grouping and
 * operation ids, local `$ref`s (schemas, parameters, responses, bodies), cycles and size limits,
 * 3.0's `nullable` and 3.1's null types folded into one flag, and documents with fields missing or
 * of the wrong type (operator input: never a throw, except "this is not OpenAPI 3").
 */
import { describe, expect, it } from "vitest";
import {
  buildReference,
  curlCommand,
  MAX_SCHEMA_NODES,
  NotOpenApiError,
  type OperationView,
  operationId,
  type SchemaView,
  shellQuote,
} from "../../workers/web/reference/view-model";

const doc = (extra: Record<string, unknown>, openapi = "3.1.0") => ({
  openapi,
  info: { title: "Pets", version: "2.0" },
  ...extra,
});

function only(view: ReturnType<typeof buildReference>): OperationView {
  const op = view.groups[0]?.operations[0];
  if (!op) throw new Error("no operation");
  return op;
}

const bodySchema = (op: OperationView): SchemaView => {
  const schema = op.requestBody?.contents[0]?.schema;
  if (!schema) throw new Error("no body schema");
  return schema;
};
const responseSchema = (op: OperationView, status = "200"): SchemaView => {
  const schema = op.responses.find((r) => r.status === status)?.contents[0]?.schema;
  if (!schema) throw new Error(`no ${status} schema`);
  return schema;
};
const prop = (schema: SchemaView | undefined, name: string): SchemaView => {
  const found = schema?.properties?.find((p) => p.name === name)?.schema;
  if (!found) throw new Error(`no property ${name}`);
  return found;
};

describe("reference view model", () => {
  it("groups operations by their first tag, in the document's tag order, with stable ids", () => {
    const view = buildReference(
      doc({
        tags: [{ name: "Pets", description: "All about pets" }, { name: "Unused" }],
        paths: {
          "/stores/{storeId}": { get: { tags: ["Stores"], summary: "A store" } },
          "/pets": {
            get: { tags: ["Pets", "Stores"], summary: "List pets" },
            post: { tags: ["Pets"], summary: "Add a pet", deprecated: true },
            parameters: "junk",
          },
          "/untagged": { delete: {} },
        },
      }),
    );
    expect(view.title).toBe("Pets");
    expect(view.openapi).toBe("3.1");
    expect(view.groups.map((g) => [g.name, g.operations.map((o) => o.id)])).toEqual([
      ["Pets", ["op-get-pets", "op-post-pets"]],
      ["Stores", ["op-get-stores-storeid"]],
      ["Other", ["op-delete-untagged"]],
    ]);
    expect(view.groups[0]?.description).toBe("All about pets");
    expect(view.groups[0]?.operations[1]?.deprecated).toBe(true);
  });

  it("keeps only the wanted tags, and never repeats an id on one page", () => {
    const taken = new Set(["op-get-keys"]);
    const view = buildReference(
      doc({
        paths: {
          "/keys": { get: { tags: ["Tenant API"] } },
          "/admin/keys": { get: { tags: ["Admin"] }, post: { tags: ["Admin", "Tenant API"] } },
          "/a/b": { get: { tags: ["Tenant API"] } },
          "/a-b": { get: { tags: ["Tenant API"] } },
        },
      }),
      { tags: ["Tenant API"], idsTaken: taken },
    );
    expect(view.groups).toHaveLength(1);
    expect(view.groups[0]?.operations.map((o) => [o.method, o.path, o.id])).toEqual([
      ["get", "/keys", "op-get-keys-2"],
      ["post", "/admin/keys", "op-post-admin-keys"],
      ["get", "/a/b", "op-get-a-b"],
      ["get", "/a-b", "op-get-a-b-2"],
    ]);
    expect(operationId("get", "/", new Set())).toBe("op-get-root");
    expect(operationId("get", '/"><img src=x>/{id}', new Set())).toBe("op-get-img-src-x-id");
  });

  it("resolves local $refs of schemas, parameters, bodies and responses (JSON Pointer escapes too)", () => {
    const view = buildReference(
      doc({
        paths: {
          "/pets/{id}": {
            parameters: [{ $ref: "#/components/parameters/Id" }],
            patch: {
              parameters: [{ name: "verbose", in: "query", schema: { type: "boolean", default: false } }],
              requestBody: { $ref: "#/components/requestBodies/PetPatch" },
              responses: {
                "200": { $ref: "#/components/responses/Pet" },
                "404": { description: "No such pet" },
              },
            },
          },
        },
        components: {
          parameters: { Id: { name: "id", in: "path", description: "The pet", schema: { type: "string" } } },
          requestBodies: {
            PetPatch: {
              required: true,
              content: { "application/json": { schema: { $ref: "#/components/schemas/Pet~1Patch" } } },
            },
          },
          responses: {
            Pet: {
              description: "The pet",
              content: { "application/json": { schema: { $ref: "#/components/schemas/Pet" } } },
            },
          },
          schemas: {
            Pet: {
              type: "object",
              required: ["name"],
              properties: {
                name: { type: "string", description: "Its name" },
                tags: { type: "array", items: { $ref: "#/components/schemas/Tag" } },
                kind: { type: "string", enum: ["cat", "dog"] },
              },
            },
            "Pet/Patch": { type: "object", properties: { name: { type: "string", example: "Rex" } } },
            Tag: { type: "string", format: "slug" },
          },
        },
      }),
    );
    const op = only(view);
    expect(op.parameters.map((p) => [p.name, p.in, p.required, p.description])).toEqual([
      ["id", "path", true, "The pet"],
      ["verbose", "query", false, ""],
    ]);
    expect(op.parameters[1]?.schema.defaultValue).toBe("false");
    expect(op.requestBody?.required).toBe(true);
    expect(bodySchema(op).ref).toBe("Pet/Patch");
    expect(op.requestBody?.example).toBe('{\n  "name": "Rex"\n}');
    const pet = responseSchema(op);
    expect(pet.ref).toBe("Pet");
    expect(pet.properties?.map((p) => [p.name, p.required])).toEqual([
      ["name", true],
      ["tags", false],
      ["kind", false],
    ]);
    expect(prop(pet, "tags").items).toMatchObject({ type: "string", format: "slug", ref: "Tag" });
    expect(prop(pet, "kind").enum).toEqual(['"cat"', '"dog"']);
    expect(op.responses.map((r) => [r.status, r.description])).toEqual([
      ["200", "The pet"],
      ["404", "No such pet"],
    ]);
  });

  it("stops at a cycle (self, mutual, and a $ref chain that loops) and marks it", () => {
    const view = buildReference(
      doc({
        paths: {
          "/nodes": {
            get: {
              parameters: [{ $ref: "#/components/parameters/Loop" }],
              responses: {
                "200": { content: { "application/json": { schema: { $ref: "#/components/schemas/Node" } } } },
              },
            },
          },
        },
        components: {
          parameters: { Loop: { $ref: "#/components/parameters/Loop" } },
          schemas: {
            Node: {
              type: "object",
              properties: {
                child: { $ref: "#/components/schemas/Node" },
                other: { $ref: "#/components/schemas/A" },
              },
            },
            A: { type: "object", properties: { b: { $ref: "#/components/schemas/B" } } },
            B: { type: "object", properties: { a: { $ref: "#/components/schemas/A" } } },
          },
        },
      }),
    );
    const op = only(view);
    expect(op.parameters).toEqual([]);
    const node = responseSchema(op);
    expect(prop(node, "child")).toMatchObject({ type: "Node", ref: "Node", cycle: true });
    expect(prop(prop(prop(node, "other"), "b"), "a")).toMatchObject({ ref: "A", cycle: true });
  });

  it("cuts deep and exponential schemas short instead of building them whole", () => {
    // Each level refers to the next ten times: 10^6 nodes if expanded.
    const schemas: Record<string, unknown> = {};
    for (let level = 0; level < 6; level++) {
      const props: Record<string, unknown> = {};
      for (let i = 0; i < 10; i++) props[`p${i}`] = { $ref: `#/components/schemas/L${level + 1}` };
      schemas[`L${level}`] = { type: "object", properties: props };
    }
    schemas.L6 = { type: "string" };
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 50; i++) deep = { type: "object", properties: { x: deep } };
    const started = Date.now();
    const view = buildReference(
      doc({
        paths: {
          "/wide": {
            get: {
              responses: {
                "200": { content: { "application/json": { schema: { $ref: "#/components/schemas/L0" } } } },
              },
            },
          },
          "/deep": { get: { responses: { "200": { content: { "application/json": { schema: deep } } } } } },
        },
        components: { schemas },
      }),
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(view.truncated).toBe(true);
    let count = 0;
    const walk = (s: SchemaView | undefined, depth: number): number => {
      if (!s) return depth;
      count++;
      let max = depth;
      for (const p of s.properties ?? []) max = Math.max(max, walk(p.schema, depth + 1));
      return Math.max(max, walk(s.items, depth + 1));
    };
    const [wide, deepOp] = view.groups[0]?.operations ?? [];
    if (!wide || !deepOp) throw new Error("missing operations");
    walk(responseSchema(wide), 0);
    expect(count).toBeLessThanOrEqual(MAX_SCHEMA_NODES + 1);
    expect(walk(responseSchema(deepOp), 0)).toBeLessThanOrEqual(7);
  });

  it("reads 3.0 nullable and 3.1 null types and null alternatives as one `nullable` flag", () => {
    const schemaOf = (schema: unknown, openapi: string) =>
      responseSchema(
        only(
          buildReference(
            doc(
              {
                paths: {
                  "/x": { get: { responses: { "200": { content: { "application/json": { schema } } } } } },
                },
              },
              openapi,
            ),
          ),
        ),
      );
    expect(schemaOf({ type: "string", nullable: true }, "3.0.3")).toMatchObject({
      type: "string",
      nullable: true,
    });
    expect(schemaOf({ type: "string" }, "3.0.3")).toMatchObject({ type: "string", nullable: false });
    expect(schemaOf({ type: ["string", "null"] }, "3.1.0")).toMatchObject({ type: "string", nullable: true });
    expect(schemaOf({ type: ["integer", "string"] }, "3.1.0")).toMatchObject({
      type: "integer | string",
      nullable: false,
    });
    expect(schemaOf({ type: "null" }, "3.1.0")).toMatchObject({ type: "null", nullable: false });
    expect(
      schemaOf({ anyOf: [{ type: "integer", format: "int64" }, { type: "null" }] }, "3.1.0"),
    ).toMatchObject({
      type: "integer",
      format: "int64",
      nullable: true,
    });
    expect(schemaOf({ enum: ["a", null] }, "3.1.0")).toMatchObject({ enum: ['"a"'], nullable: true });
    const union = schemaOf({ oneOf: [{ type: "string" }, { type: "integer" }, { type: "null" }] }, "3.1.0");
    expect(union).toMatchObject({ type: "one of", nullable: true });
    expect(union.variants?.schemas.map((s) => s.type)).toEqual(["string", "integer"]);
    expect(
      schemaOf({ allOf: [{ $ref: "#/nowhere" }], nullable: true, description: "Why" }, "3.0.0"),
    ).toMatchObject({
      nullable: true,
      description: "Why",
      unresolved: "#/nowhere",
    });
  });

  it("survives missing and mistyped fields, and refuses what is not OpenAPI 3", () => {
    const bare = buildReference({ openapi: "3.0.0" });
    expect(bare).toMatchObject({ title: "API reference", version: "", description: "", groups: [] });
    const odd = buildReference({
      openapi: "3.1.0",
      info: { title: 42, description: ["x"] },
      tags: [null, { name: 5 }, "x"],
      paths: {
        "/a": null,
        "/b": { get: "nope", post: { parameters: [null, { name: "q" }, 7], responses: [], requestBody: 1 } },
        "/c": {
          put: { responses: { "200": null, "201": {} }, requestBody: { content: { "text/plain": {} } } },
        },
        "/d": {
          get: {
            responses: { "200": { content: { "application/json": { schema: { $ref: "other.json#/X" } } } } },
          },
        },
      },
    });
    expect(odd.title).toBe("API reference");
    const ops = odd.groups.flatMap((g) => g.operations);
    expect(ops.map((o) => `${o.method} ${o.path}`)).toEqual(["post /b", "put /c", "get /d"]);
    expect(ops[0]?.parameters).toEqual([]);
    expect(ops[0]?.requestBody).toBeUndefined();
    expect(ops[1]?.responses.map((r) => r.status)).toEqual(["201"]);
    expect(ops[1]?.requestBody?.contents).toEqual([{ mediaType: "text/plain", schema: undefined }]);
    expect(responseSchema(ops[2] as OperationView)).toMatchObject({ unresolved: "other.json#/X", ref: "X" });

    for (const bad of [
      null,
      "text",
      [],
      { swagger: "2.0" },
      { openapi: "2.0" },
      { openapi: "3.2.0" },
      { openapi: 3.1 },
    ]) {
      expect(() => buildReference(bad)).toThrow(NotOpenApiError);
    }
    expect(() => buildReference({ swagger: "2.0" })).toThrow(/Swagger 2\.0/);
  });

  it("keeps hostile strings as plain strings (escaping is the page's job) and quotes curl for a shell", () => {
    const hostile = `<img src=x onerror="alert(1)">'; rm -rf ~`;
    const view = buildReference(
      doc({
        paths: {
          "/things/{id}": {
            post: {
              summary: hostile,
              description: hostile,
              parameters: [
                { name: "id", in: "path" },
                { name: "q", in: "query", required: true },
                { name: "Idempotency-Key", in: "header", required: true },
              ],
              requestBody: { content: { "application/json": { example: { note: hostile } } } },
            },
          },
        },
      }),
    );
    const op = only(view);
    expect(op.summary).toBe(hostile);
    const curl = curlCommand(op, "https://gw.example/");
    expect(curl).toBe(
      [
        "curl -X POST 'https://gw.example/things/{id}?q=<q>'",
        `-H "Authorization: Bearer $GW_TEST_KEY"`,
        "-H 'Idempotency-Key: <Idempotency-Key>'",
        "-H 'Content-Type: application/json'",
        `-d ${shellQuote(JSON.stringify({ note: hostile }, null, 2))}`,
      ].join(" \\\n  "),
    );
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it("lists 3.1 webhooks apart from the operations, with their headers and body, filtered by tag", () => {
    const webhooks = {
      "key.created": {
        post: {
          tags: ["Webhooks"],
          summary: "key.created event",
          parameters: [{ name: "webhook-id", in: "header", required: true, schema: { type: "string" } }],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  properties: { type: { type: "string", enum: ["key.created"] }, data: { type: "object" } },
                  required: ["type", "data"],
                },
              },
            },
          },
          responses: { 200: { description: "Received" } },
        },
      },
      broken: "junk",
      "no.method": { summary: "nothing to send" },
    };
    const view = buildReference(doc({ paths: { "/pets": { get: { tags: ["Pets"] } } }, webhooks }));
    expect(view.groups.map((g) => g.name)).toEqual(["Pets"]);
    expect(view.webhooks.map((w) => [w.id, w.method, w.path, w.summary])).toEqual([
      ["op-post-key-created", "post", "key.created", "key.created event"],
    ]);
    const [hook] = view.webhooks;
    expect(hook?.parameters.map((p) => [p.name, p.in, p.required])).toEqual([["webhook-id", "header", true]]);
    expect(prop(hook?.requestBody?.contents[0]?.schema, "type").enum).toEqual(['"key.created"']);

    expect(buildReference(doc({ webhooks }), { tags: ["Pets"] }).webhooks).toEqual([]);
    expect(buildReference(doc({ webhooks: [1, 2] })).webhooks).toEqual([]);
  });
});
