/**
 * `npm start`: the whole local stack in one command, offline and without prompts. Postgres (embedded
 * PGlite persisted in .wrangler/state/pglite, or `DATABASE_URL`), migrations, the WebSocket bridge, the
 * demo origin (unless `ORIGIN_URL`), the Stripe stand-in and a `stripe listen` forwarding its events to
 * the Worker's webhook endpoint (unless `STRIPE_SECRET_KEY`), `wrangler dev`, and an idempotent demo
 * plan, tenant and key.
 * Ctrl-C stops all of it; if any part dies, the rest is stopped and the exit code is non-zero.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startDemoOrigin } from "../dev/demo-origin";
import { linksOf, startMailbox } from "../dev/mailbox";
import { migrate } from "../dev/migrate";
import { startBridge } from "../dev/pg-bridge";
import { startPostgres } from "../dev/postgres";
import { spawnInGroup, waitForOk } from "../dev/processes";
import { startStripeListen } from "../dev/stripe-listen";
import { startListenControl } from "../dev/stripe-listen-control";
import { startStripeStandIn } from "../dev/stripe-standin";
import { assertConfig } from "./check-config";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PORT = Number(process.env.PORT ?? 8787);
const BASE = `http://127.0.0.1:${PORT}`;
const ADMIN_TOKEN = process.env.ADMIN_TOKEN ?? "dev-admin-token";
const CLAIMS_SECRET = process.env.CLAIMS_SECRET ?? "dev-claims-secret";
// STATE_DIR moves every piece of local state (PGlite data, wrangler's KV/Durable Objects/Queues, the
// Stripe stand-in, the demo key) to another folder: the browser tests start a fresh stack in one.
const STATE_DIR = process.env.STATE_DIR ? resolve(process.env.STATE_DIR) : `${ROOT}.wrangler/state`;
const PGLITE_DIR = `${STATE_DIR}/pglite`;
const DEMO_KEY_FILE = process.env.STATE_DIR ? `${STATE_DIR}/demo-key.json` : `${ROOT}.wrangler/demo-key.json`;
const DEMO_PLAN = {
  name: "demo",
  burstCapacity: 60,
  refillTokens: 60,
  refillPeriodSeconds: 60,
  dailyQuota: 10_000,
  monthlyQuota: 100_000,
  entitlements: ["api"],
  // 29.00 a month with 10 units included, then 0.05 a unit for 90 units, then 0.02: a few curl
  // calls make an invoice worth reading.
  pricing: {
    model: "metered",
    currency: "usd",
    baseFee: 2900,
    includedUnits: 10,
    tiers: [
      { upTo: 90, unitAmount: 5 },
      { upTo: null, unitAmount: 2 },
    ],
  },
};

/** Stops for everything started so far, run newest first. */
const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
let shuttingDown = false;

async function shutdown(code: number, reason?: string): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    if (reason) console.error(`\n${reason}`);
    console.log("\nStopping the local stack…");
    for (const { name, stop } of stops.reverse()) {
      await stop().catch((err: unknown) => console.error(`  could not stop ${name}: ${describe(err)}`));
    }
    console.log("Stopped.");
    process.exit(code);
  }
  return await new Promise<never>(() => {});
}

process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

async function main(): Promise<void> {
  // Fail before opening the PGlite data dir, which a second `npm start` must not share.
  await assertPortFree(PORT);
  const postgres = await startPostgres({ dataDir: PGLITE_DIR });
  stops.push({ name: "Postgres", stop: postgres.stop });
  await migrate(postgres.url);
  const bridge = await startBridge({ target: postgres.url });
  stops.push({ name: "the Postgres bridge", stop: bridge.stop });

  const origin = await startOrigin();
  const stripe = await startStripe();
  const mail = await startMail();
  const vars = {
    DATABASE_URL: postgres.url,
    PG_WS_PROXY: bridge.wsProxy,
    ORIGIN_URL: origin.live,
    SANDBOX_ORIGIN_URL: origin.sandbox,
    ADMIN_TOKEN,
    CLAIMS_SECRET,
    ...stripe.vars,
    ...mail.vars,
    // Local development: webhook endpoints may be http://localhost receivers on this machine.
    WEBHOOK_ALLOW_LOCALHOST: process.env.WEBHOOK_ALLOW_LOCALHOST ?? "true",
    // Local development: a log line for every request (wrangler.toml samples 1 % in production).
    LOG_SAMPLE_RATE: process.env.LOG_SAMPLE_RATE ?? "1",
  };
  assertConfig(vars); // the Worker's own schema (npm run check:config): a bad var stops here, not per request
  const args = [
    "dev",
    "--port",
    String(PORT),
    "--ip",
    "127.0.0.1",
    "--show-interactive-dev-session=false",
    "--test-scheduled",
    "--persist-to",
    STATE_DIR,
  ];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  const wrangler = spawnInGroup(`${ROOT}node_modules/.bin/wrangler`, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      WRANGLER_SEND_METRICS: "false",
      WRANGLER_LOG_PATH: `${ROOT}.wrangler/logs`,
    },
  });
  stops.push({ name: "wrangler dev", stop: () => wrangler.stop("SIGTERM") });
  void wrangler.exited.then((how) =>
    shutdown(1, `wrangler dev exited unexpectedly (${how}); see its output above.`),
  );

  await waitForOk(`${BASE}/health/live`, { timeoutMs: 120_000, exited: wrangler.exited });
  const { tenantId, key, hello } = await seedDemo();
  const portal = await admin<{ url: string }>("POST", `/admin/v1/tenants/${tenantId}/portal-sessions`);
  // wrangler dev never fires cron triggers itself: run the Stripe reporter every minute, as the
  // production cron (wrangler.toml [triggers]) does.
  const cron = setInterval(() => {
    fetch(`${BASE}/__scheduled?cron=*+*+*+*+*`)
      .then((res) => res.arrayBuffer())
      .catch(() => {});
  }, 60_000);
  stops.push({ name: "the cron timer", stop: async () => clearInterval(cron) });
  if (hello !== 200) console.warn(`\nWarning: GET /v1/hello with the demo key answered ${hello}, not 200.`);

  const db = postgres.embedded
    ? `embedded PGlite (${PGLITE_DIR.startsWith(ROOT) ? PGLITE_DIR.slice(ROOT.length) : PGLITE_DIR})`
    : `server ${redact(postgres.url)}`;
  console.log(`
  Edge gateway ready at ${BASE}
    Postgres:     ${db}
    Origin:       ${origin.label}; sandbox ${origin.sandbox}
    Stripe:       ${stripe.label}
    Mail:         ${mail.label}
    Admin token:  ${ADMIN_TOKEN}

  In a browser:
    Portal (demo tenant): ${portal.url}
      (single use, expires in 15 minutes; a fresh one: npx gw portal-link demo, or
       curl -s -X POST ${BASE}/admin/v1/tenants/${tenantId}/portal-sessions -H "Authorization: Bearer ${ADMIN_TOKEN}")
    Console: ${BASE}/console (sign in with the admin token)
    Sign-up: ${BASE}/portal/signup (plan "${mail.vars.PORTAL_SIGNUP_PLAN}"; the links it mails are printed here as "Mail to …")

  Try it:
    curl -i ${BASE}/v1/hello -H "Authorization: Bearer ${key}"
    curl -s ${BASE}/gateway/v1/usage -H "Authorization: Bearer ${key}"
    open ${BASE}/gateway/docs

  Usage reaches Postgres within seconds and Stripe within a minute; then:
    npm run reconcile -- --from ${new Date().toISOString().slice(0, 10)} --to ${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}
${stripe.recipe({ key, tenantId })}
  Ctrl-C stops everything.
`);
}

/** `ORIGIN_URL` (and `SANDBOX_ORIGIN_URL`, defaulting to it) when set, else a fresh demo origin. */
async function startOrigin(): Promise<{ live: string; sandbox: string; label: string }> {
  const live = process.env.ORIGIN_URL;
  if (live) return { live, sandbox: process.env.SANDBOX_ORIGIN_URL ?? live, label: `${live} (ORIGIN_URL)` };
  const demo = await startDemoOrigin();
  stops.push({ name: "the demo origin", stop: demo.stop });
  return { live: demo.url, sandbox: `${demo.url}/sandbox`, label: `demo origin ${demo.url}` };
}

/**
 * `STRIPE_SECRET_KEY` set: real Stripe (api.stripe.com) with that key. Unset: a local Stripe stand-in
 * (dev/stripe-standin.ts) and a test key for it.
 */
async function startStripe(): Promise<{
  vars: Record<string, string>;
  label: string;
  recipe: (demo: { key: string; tenantId: string }) => string;
}> {
  const key = process.env.STRIPE_SECRET_KEY;
  if (key) {
    const secret = process.env.STRIPE_WEBHOOK_SECRET;
    return {
      vars: { STRIPE_SECRET_KEY: key, ...(secret ? { STRIPE_WEBHOOK_SECRET: secret } : {}) },
      label: "api.stripe.com (STRIPE_SECRET_KEY)",
      recipe: () => `
  Stripe webhooks: stripe listen --forward-to ${BASE}/webhooks/stripe, and restart with the
  STRIPE_WEBHOOK_SECRET it prints${secret ? " (set now)" : " (unset now: webhooks are refused)"}.
`,
    };
  }
  // Persisted like the PGlite data, so customer ids kept in Postgres still exist after a restart.
  const standIn = await startStripeStandIn({ stateFile: `${STATE_DIR}/stripe-standin.json` });
  stops.push({ name: "the Stripe stand-in", stop: standIn.stop });
  const apiKey = "sk_test_local";
  // `stripe listen`: the stand-in's events from now on, signed, to the Worker's webhook endpoint.
  const listen = await startStripeListen({
    apiUrl: standIn.url,
    apiKey,
    forwardTo: `${BASE}/webhooks/stripe`,
  });
  stops.push({ name: "stripe listen", stop: listen.stop });
  const control = await startListenControl(listen);
  stops.push({ name: "the stripe listen control", stop: control.stop });
  return {
    vars: { STRIPE_SECRET_KEY: apiKey, STRIPE_API_URL: standIn.url, STRIPE_WEBHOOK_SECRET: listen.secret },
    label: `local stand-in ${standIn.url} (set STRIPE_SECRET_KEY for real Stripe); webhooks forwarded`,
    recipe: ({ key, tenantId }) => `
  Watch the money loop (the stand-in's events reach ${BASE}/webhooks/stripe as \`stripe listen\` lines):
    1. send some traffic, and see what the demo tenant will pay so far:
       for i in $(seq 25); do curl -s -o /dev/null ${BASE}/v1/hello -H "Authorization: Bearer ${key}"; done
       curl -s ${BASE}/gateway/v1/billing -H "Authorization: Bearer ${key}"
    2. report it to Stripe now, the open hour included (the cron would wait for the hour to end):
       curl -s -X POST "${BASE}/admin/v1/billing/report?openHours=true" -H "Authorization: Bearer ${ADMIN_TOKEN}"
    3. move the stand-in's clock past the billing period's end (32 days): it invoices and charges
       curl -s -X POST ${standIn.url}/_standin/clock/advance -H "content-type: application/json" -d '{"seconds":2764800}'
    4. watch the --> invoice.* / <-- [200] POST lines here, then read the invoice (hosted page and PDF links):
       curl -s ${BASE}/gateway/v1/invoices -H "Authorization: Bearer ${key}"
    To see dunning instead, before step 3 make the payment fail, then pay the open invoice later:
       curl -s -X POST ${standIn.url}/_standin/customers/<billing.customerId of GET /admin/v1/tenants/${tenantId}>/payment_outcome -d '{"outcome":"fail"}'
  Webhook faults (seeded, deterministic): GET/PUT ${control.url}/faults, POST /flush, GET /deliveries
    curl -s -X PUT ${control.url}/faults -d '{"seed":1,"duplicate":{"times":2},"reorder":{"window":3}}'
`,
  };
}

/**
 * `MAIL_API_KEY` set: the real mail API (`MAIL_API_URL`, default Resend's) sending as `MAIL_FROM`. Unset:
 * the dev mailbox (dev/mailbox.ts), which prints each message's links here. Sign-up is on, on the
 * demo plan unless `PORTAL_SIGNUP_PLAN` names another.
 */
async function startMail(): Promise<{ vars: Record<string, string>; label: string }> {
  const PORTAL_SIGNUP_PLAN = process.env.PORTAL_SIGNUP_PLAN ?? DEMO_PLAN.name;
  const apiKey = process.env.MAIL_API_KEY;
  if (apiKey) {
    const { MAIL_API_URL, MAIL_FROM } = process.env;
    return {
      vars: {
        MAIL_API_KEY: apiKey,
        PORTAL_SIGNUP_PLAN,
        ...(MAIL_API_URL ? { MAIL_API_URL } : {}),
        ...(MAIL_FROM ? { MAIL_FROM } : {}),
      },
      label: `${MAIL_API_URL ?? "https://api.resend.com"} (MAIL_API_KEY)${MAIL_FROM ? "" : "; set MAIL_FROM to send"}`,
    };
  }
  const mailbox = await startMailbox({
    onMessage: (message) => {
      for (const link of linksOf(message.text)) console.log(`  Mail to ${message.to.join(", ")}: ${link}`);
    },
  });
  stops.push({ name: "the dev mailbox", stop: mailbox.stop });
  return {
    vars: {
      MAIL_API_URL: mailbox.url,
      MAIL_API_KEY: mailbox.apiKey,
      MAIL_FROM: "Gateway Portal <portal@gateway.localhost>",
      PORTAL_SIGNUP_PLAN,
    },
    label: `dev mailbox ${mailbox.url} (links printed below; GET /messages lists them; set MAIL_API_KEY for real mail)`,
  };
}

/**
 * Ensures plan "demo", tenant "demo" and a live key for it. Returns the tenant id, the key and the status of
 * `GET /v1/hello` with it (200 when the whole path, origin included, works).
 */
async function seedDemo(): Promise<{ tenantId: string; key: string; hello: number }> {
  const plans = await admin<{ data: Array<{ id: string; name: string; pricing: { model: string } }> }>(
    "GET",
    "/admin/v1/plans?limit=200",
  );
  const found = plans.data.find((p) => p.name === DEMO_PLAN.name);
  // A demo plan kept from before it had a price gets one (its tenant's subscription follows now).
  if (found && found.pricing.model === "free")
    await admin("PATCH", `/admin/v1/plans/${found.id}`, { pricing: DEMO_PLAN.pricing, applyPricing: "now" });
  const plan = found ?? (await admin<{ id: string }>("POST", "/admin/v1/plans", DEMO_PLAN));

  const existing = await admin<{ data: Array<{ id: string }> }>("GET", "/admin/v1/tenants?slug=demo");
  const tenant = existing.data[0];
  if (tenant) {
    const saved = await readDemoKey();
    if (saved?.tenantId === tenant.id) {
      // Reuse it unless the gateway rejects it (401); a failing origin is no reason for a new key.
      const hello = await helloStatus(saved.key);
      if (hello !== 401) return { tenantId: tenant.id, key: saved.key, hello };
    }
    const body = { env: "live", name: "demo" };
    const fresh = await admin<{ key: string }>("POST", `/admin/v1/tenants/${tenant.id}/keys`, body);
    const key = await saveDemoKey(tenant.id, fresh.key);
    return { tenantId: tenant.id, key, hello: await helloStatus(key) };
  }
  const body = { slug: "demo", name: "Demo tenant", planId: plan.id };
  const created = await admin<{ tenant: { id: string }; key: { key: string } }>(
    "POST",
    "/admin/v1/tenants",
    body,
  );
  const key = await saveDemoKey(created.tenant.id, created.key.key);
  return { tenantId: created.tenant.id, key, hello: await helloStatus(key) };
}

async function admin<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`seeding: ${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

async function helloStatus(key: string): Promise<number> {
  const res = await fetch(`${BASE}/v1/hello`, { headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer(); // read it all: a cancelled body makes workerd log a broken pipe
  return res.status;
}

async function readDemoKey(): Promise<{ tenantId: string; key: string } | null> {
  try {
    return JSON.parse(await readFile(DEMO_KEY_FILE, "utf8")) as { tenantId: string; key: string };
  } catch {
    return null;
  }
}

async function saveDemoKey(tenantId: string, key: string): Promise<string> {
  await mkdir(dirname(DEMO_KEY_FILE), { recursive: true });
  await writeFile(DEMO_KEY_FILE, `${JSON.stringify({ tenantId, key }, null, 2)}\n`, { mode: 0o600 });
  return key;
}

async function assertPortFree(port: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", () =>
      reject(new Error(`127.0.0.1:${port} is in use (another npm start?); set PORT to use another port`)),
    );
    server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
  });
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

main().catch((err: unknown) => shutdown(1, `npm start failed: ${describe(err)}`));
