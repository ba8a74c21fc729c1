/**
 * Vitest globalSetup (runs in Node, once per run): a fresh migrated Postgres (embedded PGlite unless
 * `DATABASE_URL` is set), the WebSocket bridge the Worker reaches it through, and the test origins.
 * Their addresses are provided to vitest.config.ts (Worker bindings) and to tests via `inject()`.
 */
import type { TestProject } from "vitest/node";
import { startMailbox } from "../dev/mailbox";
import { migrate } from "../dev/migrate";
import { startBridge } from "../dev/pg-bridge";
import { startPostgres } from "../dev/postgres";
import { startStripeStandIn } from "../dev/stripe-standin";
import { startDeadOrigin, startOriginServer } from "./support/origin-server";
import { startTenantWebhookReceiver } from "./support/tenant-webhook-receiver";

declare module "vitest" {
  export interface ProvidedContext {
    /** `postgres://…` of the fresh, migrated test database (as reachable from Node and, via the bridge, the Worker). */
    databaseUrl: string;
    /** `127.0.0.1:<port>/v1`: the Worker's `PG_WS_PROXY`. */
    pgWsProxy: string;
    /** `http://127.0.0.1:<port>` of the recording test origin (test/support/origin-server.ts). */
    originUrl: string;
    /** `http://127.0.0.1:<port>` of an origin that drops every connection (test/support/origin-server.ts). */
    deadOriginUrl: string;
    /** `http://127.0.0.1:<port>` of the Stripe stand-in (dev/stripe-standin.ts), shared by all test files. */
    stripeUrl: string;
    /** `http://127.0.0.1:<port>` of the dev mailbox (dev/mailbox.ts): the Worker's MAIL_API_URL; `GET /messages` reads it. */
    mailboxUrl: string;
    /** `http://127.0.0.1:<port>` of the tenants' webhook receiver (test/support/tenant-webhook-receiver.ts): `/hooks/<uniq>` per test, `/control/…` to script and read it. */
    hooksUrl: string;
  }
}

/** Starts the shared services, provides their addresses, and returns the teardown that stops them. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await startPostgres({ fresh: true });
  const stops: Array<() => Promise<void>> = [postgres.stop];
  try {
    console.log(
      postgres.embedded
        ? "[global-setup] Postgres: embedded PGlite (set DATABASE_URL to use a server)"
        : `[global-setup] Postgres: server, fresh database ${redact(postgres.url)}`,
    );
    await migrate(postgres.url);
    const bridge = await startBridge({ target: postgres.url });
    stops.unshift(bridge.stop);
    const origin = await startOriginServer();
    stops.unshift(origin.stop);
    const stripe = await startStripeStandIn();
    stops.unshift(stripe.stop);

    project.provide("databaseUrl", postgres.url);
    project.provide("pgWsProxy", bridge.wsProxy);
    project.provide("originUrl", origin.url);
    const deadOrigin = await startDeadOrigin();
    stops.unshift(deadOrigin.stop);
    project.provide("deadOriginUrl", deadOrigin.url);
    project.provide("stripeUrl", stripe.url);
    const mailbox = await startMailbox({ apiKey: "re_test_mailbox" });
    stops.unshift(mailbox.stop);
    project.provide("mailboxUrl", mailbox.url);
    const hooks = await startTenantWebhookReceiver();
    stops.unshift(hooks.stop);
    project.provide("hooksUrl", hooks.url);
  } catch (err) {
    await stopAll(stops);
    throw err;
  }
  return () => stopAll(stops);
}

async function stopAll(stops: Array<() => Promise<void>>): Promise<void> {
  for (const stop of stops) await stop().catch((err) => console.error("[global-setup] teardown:", err));
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}
