/**
 * The provider's document loader (workers/web/reference/operator-document.ts) with a stand-in
 * fetch: a document that never answers is given up after the timeout, and the per-isolate cache
 * keeps a good document 5 minutes and a failure 30 s (the time is a parameter, never slept).
 * Real HTTP (unreachable, oversized, invalid) is in test/integration/portal-docs.test.ts.
 */
import { describe, expect, it } from "vitest";
import { operatorReference } from "../../workers/web/reference/operator-document";

const DOC = JSON.stringify({ openapi: "3.0.3", info: { title: "Pets" }, paths: { "/v1/pets": { get: {} } } });

/** A fetch that counts its calls and answers what `answer` gives, or never when it gives undefined. */
function standIn(answer: () => Response | undefined) {
  const calls: string[] = [];
  const fetch = ((url: string, init?: RequestInit) => {
    calls.push(url);
    const res = answer();
    if (res) return Promise.resolve(res);
    return new Promise<Response>((_, reject) => {
      init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
    });
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

describe("operator document loader", () => {
  it("gives up on a document that never answers, with a sentence for the page", async () => {
    const { fetch } = standIn(() => undefined);
    const started = Date.now();
    const result = await operatorReference(`https://docs.test/hang-${crypto.randomUUID()}`, {
      fetch,
      timeoutMs: 50,
    });
    expect(result).toEqual({ ok: false, reason: "The provider's API reference did not answer in time." });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("keeps a good document 5 minutes and a failure 30 seconds", async () => {
    let good = true;
    const { fetch, calls } = standIn(() =>
      good ? new Response(DOC) : new Response("down", { status: 503 }),
    );
    const url = `https://docs.test/cache-${crypto.randomUUID()}`;
    const t0 = Date.parse("2027-01-01T00:00:00Z");

    const first = await operatorReference(url, { fetch, now: t0 });
    expect(first.ok && first.view.title).toBe("Pets");
    good = false;
    expect(await operatorReference(url, { fetch, now: t0 + 5 * 60_000 - 1 })).toBe(first);
    expect(calls).toHaveLength(1);

    const failed = await operatorReference(url, { fetch, now: t0 + 5 * 60_000 });
    expect(failed).toEqual({ ok: false, reason: "The provider's API reference answered HTTP 503." });
    expect(calls).toHaveLength(2);
    good = true;
    expect(await operatorReference(url, { fetch, now: t0 + 5 * 60_000 + 30_000 - 1 })).toBe(failed);
    const back = await operatorReference(url, { fetch, now: t0 + 5 * 60_000 + 30_000 });
    expect(back.ok).toBe(true);
    expect(calls).toHaveLength(3);
  });
});
