/**
 * One log line per request (workers/edge/request-id.ts): exactly one `request` line with the fixed
 * fields, written once the bodies are done; `LOG_SAMPLE_RATE` thins `ok` lines, never errors;
 * `Server-Timing` splits `auth`, `admit`, `origin` and `total`.
 *
 * Requests go to the real default export with an ExecutionContext the test waits on, so the line
 * (written from waitUntil) is in the captured console before the assertions.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../../workers/index";
import { BASE, bearer, seedTenant, type TenantFixture, uniq } from "../support/gateway";

let tenant: TenantFixture;
beforeAll(async () => {
  tenant = await seedTenant();
});
afterEach(() => vi.restoreAllMocks());

type Line = Record<string, unknown>;

/** Sends one request, reads the body, waits for its waitUntil work; returns it with the lines logged. */
async function traced(
  path: string,
  init: RequestInit = {},
  vars: Record<string, string> = {},
): Promise<{ res: Response; body: string; lines: Line[] }> {
  const logged: string[] = [];
  for (const level of ["log", "warn", "error"] as const) {
    vi.spyOn(console, level).mockImplementation((line: string) => logged.push(line));
  }
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, init),
    { ...env, LOG_LEVEL: "info", ...vars } as never,
    ctx as never,
  );
  const body = await res.text();
  await waitOnExecutionContext(ctx);
  vi.restoreAllMocks();
  const lines = logged.map((l) => JSON.parse(l) as Line).filter((l) => l.msg === "request");
  return { res, body, lines };
}

const bytes = (text: string) => new TextEncoder().encode(text).byteLength;

describe("request log line", () => {
  it("a proxied request: one line with every field, and Server-Timing auth, admit, origin, total", async () => {
    const marker = uniq();
    const payload = '{"hello":"world"}';
    const { res, body, lines } = await traced(`/v1/${marker}`, {
      method: "POST",
      headers: {
        ...bearer(tenant.key),
        "content-type": "application/json",
        "content-length": String(bytes(payload)),
      },
      body: payload,
    });
    expect(res.status).toBe(200);
    expect(lines).toHaveLength(1);
    const [line] = lines as [Line];
    expect(line).toEqual({
      level: "info",
      msg: "request",
      request_id: res.headers.get("x-request-id"),
      tenant_id: tenant.tenantId,
      key_id: tenant.keyId,
      route: "/v1/",
      method: "POST",
      status: 200,
      code: "ok",
      latency_ms: expect.any(Number),
      origin_ms: expect.any(Number),
      bytes_in: bytes(payload),
      bytes_out: bytes(body),
    });
    expect(res.headers.get("server-timing")).toMatch(
      /^auth;dur=\d+, admit;dur=\d+, origin;dur=\d+, total;dur=\d+$/,
    );
  });

  it("a streamed body of unknown length: the line waits for it and counts what was sent", async () => {
    const { res, body, lines } = await traced(`/v1/stream/${uniq()}`, { headers: bearer(tenant.key) });
    expect(res.headers.get("content-length")).toBeNull();
    expect(body).toBe("chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ status: 200, code: "ok", bytes_in: 0, bytes_out: bytes(body) });
  });

  it("a refused request: one line with the problem code, no tenant, Server-Timing auth and total", async () => {
    const { res, body, lines } = await traced(`/v1/${uniq()}`, { headers: { "x-api-key": "nope" } });
    expect(res.status).toBe(401);
    expect(lines).toEqual([
      {
        level: "info",
        msg: "request",
        request_id: res.headers.get("x-request-id"),
        route: "/v1/",
        method: "GET",
        status: 401,
        code: "unauthorized",
        latency_ms: expect.any(Number),
        bytes_in: 0,
        bytes_out: bytes(body),
      },
    ]);
    expect(res.headers.get("server-timing")).toMatch(/^auth;dur=\d+, total;dur=\d+$/);
  });

  it("an admin API request: the matched route, and the JSON body counted", async () => {
    const { res, body, lines } = await traced("/admin/v1/plans", { headers: bearer(env.ADMIN_TOKEN) });
    expect(res.status).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      route: "/admin/v1/plans",
      method: "GET",
      status: 200,
      code: "ok",
      bytes_out: bytes(body),
    });
    expect(res.headers.get("server-timing")).toMatch(/^total;dur=\d+$/);
  });

  it("LOG_SAMPLE_RATE=0 drops ok lines but never an error line", async () => {
    const ok = await traced(`/v1/${uniq()}`, { headers: bearer(tenant.key) }, { LOG_SAMPLE_RATE: "0" });
    expect(ok.res.status).toBe(200);
    expect(ok.lines).toEqual([]);
    const refused = await traced(
      `/v1/${uniq()}`,
      { headers: { "x-api-key": "nope" } },
      { LOG_SAMPLE_RATE: "0" },
    );
    expect(refused.lines.map((l) => l.code)).toEqual(["unauthorized"]);
  });

  it("LOG_LEVEL=warn drops info lines; a 5xx is logged at error", async () => {
    const quiet = await traced(`/v1/${uniq()}`, { headers: bearer(tenant.key) }, { LOG_LEVEL: "warn" });
    expect(quiet.lines).toEqual([]);
    const dead = await traced(`/dead/${uniq()}`, { headers: bearer(tenant.key) }, { LOG_LEVEL: "warn" });
    expect(dead.res.status).toBe(502);
    expect(dead.lines).toMatchObject([
      {
        level: "error",
        msg: "request",
        status: 502,
        code: "origin_unavailable",
        origin_ms: expect.any(Number),
      },
    ]);
  });
});
