/**
 * The Worker's composition root and only default export: HTTP (the gateway), the usage queue
 * consumer, and the cron (the Stripe usage reporter, the billing sync that catches Stripe up, the
 * prepaid credits' hourly settlement and grant repair, the tenants' key-expiry and
 * route-deprecation events, the sweep that re-queues overdue webhook deliveries, and retention's
 * bounded pruning).
 */

import { createApp } from "./app";
import { creditsCron } from "./billing/credits/settlement";
import { syncBillingDue } from "./billing/subscription-sync";
import type { Bindings } from "./env";
import { consumeEvents } from "./events/consumer";
import { sweepDeliveries } from "./events/delivery-sweep";
import { keyExpiryCron } from "./events/key-expiry";
import { EVENTS_QUEUE_NAME } from "./events/messages";
import { routeNoticesCron } from "./events/route-notices";
import { consumeUsage } from "./metering/consumer";
import { storeDeadLetters, USAGE_DLQ_NAME } from "./metering/dead-letters";
import { reportAndChain } from "./metering/stripe-reporter";
import { retentionCron } from "./retention/run";

export { TenantLimiter } from "../durable-objects/tenant";
export { UsageSpool } from "../durable-objects/usage-spool";

const app = createApp();

export default {
  fetch: app.fetch,
  // The usage DLQ's messages are stored for the console (workers/metering/dead-letters.ts); the
  // events queue carries webhook deliveries and the tenant objects' events (workers/events/).
  queue: (batch, env, ctx) =>
    batch.queue === USAGE_DLQ_NAME
      ? storeDeadLetters(batch, env, ctx)
      : batch.queue === EVENTS_QUEUE_NAME
        ? consumeEvents(batch, env, ctx)
        : consumeUsage(batch, env, ctx),
  // Retention cuts at the tick's scheduled time, so a run that starts late prunes what it was meant to.
  scheduled: (controller, env, ctx) =>
    ctx.waitUntil(
      Promise.all([
        reportAndChain(env),
        syncBillingDue(env),
        creditsCron(env),
        keyExpiryCron(env),
        routeNoticesCron(env),
        sweepDeliveries(env),
        retentionCron(env, controller.scheduledTime),
      ]),
    ),
} satisfies ExportedHandler<Bindings, unknown>;
