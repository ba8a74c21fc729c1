/**
 * README "Metering and billing": billable is a 2xx or 4xx answered by the origin — a 4xx the gateway
 * itself makes after admission (a streamed body that outgrows MAX_BODY_BYTES → 413, found only while
 * proxying, after the token was spent) is metered but never billed.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { BASE, bearer, seedTenant, uniq } from "../support/gateway";
import { captureUsage } from "../support/metering";

async function call(path: string, init: RequestInit): Promise<{ res: Response; body: string }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, init),
    { ...env, MAX_BODY_BYTES: "1000" } as never,
    ctx as never,
  );
  const body = await res.text();
  await waitOnExecutionContext(ctx);
  return { res, body };
}

const streamOf = (bytes: number) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (let sent = 0; sent < bytes; sent += 500) controller.enqueue(new Uint8Array(500).fill(120));
      controller.close();
    },
  });

describe("gateway-made 4xx after admission", () => {
  it("a streamed body over the limit is 413, metered as not billable; an origin 4xx is billable", async () => {
    const t = await seedTenant();
    const marker = uniq();
    let refused: { res: Response; body: string } | undefined;
    let origin404: { res: Response; body: string } | undefined;
    const events = await captureUsage(async () => {
      refused = await call(`/v1/${marker}/big`, {
        method: "POST",
        headers: bearer(t.key),
        body: streamOf(5_000),
      });
      origin404 = await call(`/v1/${marker}/missing?status=404`, {
        method: "POST",
        headers: bearer(t.key),
        body: "{}",
      });
    }, 2);
    expect(refused?.res.status).toBe(413);
    expect(JSON.parse(refused?.body ?? "")).toEqual({
      type: "https://gateway.dev/problems/payload_too_large",
      title: "Payload too large",
      status: 413,
      detail: "Request bodies are limited to 1000 bytes.",
      code: "payload_too_large",
      request_id: refused?.res.headers.get("x-request-id"),
    });
    expect(origin404?.res.status).toBe(404);
    const byId = new Map(events.map((e) => [e.id, e]));
    expect(byId.get(refused?.res.headers.get("x-request-id") ?? "")).toMatchObject({
      status: 413,
      billable: false,
    });
    expect(byId.get(origin404?.res.headers.get("x-request-id") ?? "")).toMatchObject({
      status: 404,
      billable: true,
    });
  });
});
