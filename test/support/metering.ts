/**
 * Metering fixtures: capture the usage events the gateway produces (instead of letting the local
 * queue deliver them), feed them to the real consumer as queue batches, steer the Stripe stand-in,
 * and read the reconciliation table.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { vi } from "vitest";
import type { Bindings } from "../../workers/env";
import worker from "../../workers/index";
import type { ReconciliationRow } from "../../workers/metering/reconciliation";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { admin, expectJson } from "./gateway";

/** Runs `fn` with queue sends captured; returns the events the gateway produced meanwhile. */
export async function captureUsage(fn: () => Promise<void>): Promise<UsageEvent[]> {
  const events: UsageEvent[] = [];
  const send = vi.spyOn(env.USAGE_QUEUE, "send").mockImplementation(async (body) => {
    events.push(body as UsageEvent);
    return {} as QueueSendResponse;
  });
  try {
    await fn();
    // Events are sent from waitUntil after the bodies finish.
    await vi.waitFor(() => {
      if (events.length === 0) throw new Error("no usage events yet");
    });
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    send.mockRestore();
  }
  return events;
}

let sequence = 0;

/** Delivers `bodies` to the consumer as one queue batch; returns what it acked and retried. */
export async function deliver(bodies: unknown[], bindings: Bindings = env) {
  const batch = createMessageBatch<unknown>(
    "gateway-usage",
    bodies.map((body) => ({ id: `msg-${++sequence}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings, ctx);
  return await getQueueResult(batch, ctx);
}

/** Fault injection in the Stripe stand-in (next `count` API calls answer `status`). */
export async function stripeFailNext(count: number, status: 500 | 429 | 503): Promise<void> {
  const res = await fetch(`${env.STRIPE_API_URL}/__control/fail`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ count, status }),
  });
  if (!res.ok) throw new Error(`stand-in control failed: ${res.status}`);
}

/** The reconciliation table of one tenant around now. */
export async function reconciliation(
  tenantId: string,
): Promise<{ differences: number; rows: ReconciliationRow[] }> {
  const from = new Date(Date.now() - 2 * 3_600_000).toISOString();
  const to = new Date(Date.now() + 2 * 3_600_000).toISOString();
  return expectJson(
    await admin("GET", `/admin/v1/reconciliation?from=${from}&to=${to}&tenant=${tenantId}`),
    200,
  );
}
