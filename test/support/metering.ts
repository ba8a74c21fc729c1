/**
 * Metering fixtures: capture the usage events the gateway produces (instead of letting the local
 * queue deliver them), feed them to the real consumer as queue batches, steer the Stripe stand-in,
 * and read the reconciliation table.
 */
import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { vi } from "vitest";
import type { CreditReconciliationRow } from "../../workers/billing/credits/reconcile-credits";
import type { Bindings } from "../../workers/env";
import worker from "../../workers/index";
import type { ReconciliationRow, Unbilled } from "../../workers/metering/reconciliation";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { admin, expectJson } from "./gateway";

/** The events in one queue message body: an envelope's events, or a legacy bare event. */
export function eventsIn(body: unknown): UsageEvent[] {
  const events = (body as { events?: unknown }).events;
  return (Array.isArray(events) ? events : [body]) as UsageEvent[];
}

/**
 * Runs `fn` with queue sends captured (not delivered); returns every event the gateway sent
 * meanwhile (deliver them all: a captured event reaches no queue). `expected`: wait for that many
 * (the producer flushes its batch up to 250 ms later) — counting only `tenantId`'s when given, since
 * a batch may also carry an earlier test's events, which must not stand in for this test's.
 */
export async function captureUsage(
  fn: () => Promise<void>,
  expected = 1,
  tenantId?: string,
): Promise<UsageEvent[]> {
  const events: UsageEvent[] = [];
  const counted = () => events.filter((e) => tenantId === undefined || e.tenantId === tenantId).length;
  const send = vi.spyOn(env.USAGE_QUEUE, "send").mockImplementation(async (body) => {
    events.push(...eventsIn(body));
    return {} as QueueSendResponse;
  });
  try {
    await fn();
    // Events are sent from waitUntil after the bodies finish, in the isolate's next batch.
    await vi.waitFor(
      () => {
        if (counted() < expected) throw new Error(`${counted()}/${expected} usage events yet`);
      },
      { timeout: 5_000 },
    );
  } finally {
    send.mockRestore();
  }
  return events;
}

/**
 * Watches what the gateway sends to the usage queue (sends still go through to the real queue).
 * `sent(id)` waits for the event of request `id`; batches flush in order, so once it has been sent
 * every event produced before it has been too.
 */
export function watchUsage() {
  const send = vi.spyOn(env.USAGE_QUEUE, "send");
  const events = () => send.mock.calls.flatMap(([body]) => eventsIn(body));
  return {
    send,
    events,
    messages: () => send.mock.calls.length,
    sent: (id: string | null) =>
      vi.waitFor(
        () => {
          const event = events().find((e) => e.id === id);
          if (!event) throw new Error(`usage event ${id} not sent yet`);
          return event;
        },
        { timeout: 5_000 },
      ),
    restore: () => send.mockRestore(),
  };
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
export async function reconciliation(tenantId: string): Promise<{
  differences: number;
  rows: ReconciliationRow[];
  unbilled: Unbilled;
  credits: CreditReconciliationRow[];
  creditDifferences: number;
}> {
  const from = new Date(Date.now() - 2 * 3_600_000).toISOString();
  const to = new Date(Date.now() + 2 * 3_600_000).toISOString();
  return expectJson(
    await admin("GET", `/admin/v1/reconciliation?from=${from}&to=${to}&tenant=${tenantId}`),
    200,
  );
}

/** Runs the Worker's cron once (`scheduled`: the Stripe usage reporter and the billing sync) and waits for it. */
export async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }),
    env as never,
    ctx as never,
  );
  await waitOnExecutionContext(ctx);
}
