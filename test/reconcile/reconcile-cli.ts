/**
 * `npm run test:reconcile`: README "`npm run reconcile` … exits 1 on any difference". The CLI runs in
 * Node and talks to a running gateway, so this runner (not vitest) starts what `npm start` starts —
 * a fresh embedded Postgres (or a fresh database on `DATABASE_URL`'s server), the WebSocket bridge,
 * the test origin and `wrangler dev` on a free port with its state in a temp dir — then:
 *
 * 1. sends one request through the gateway and waits until its usage row is in Postgres;
 * 2. runs the real `npm run reconcile` for that tenant: exit 0, "no differences" for 1 tenant-hour;
 * 3. adds a (non-billable) usage row the tenant object never admitted: admitted 1, rows 2;
 * 4. runs it again: exit 1, and the output names the tenant's hour as DIFF;
 * 5. a prepaid tenant given 5 credits spends 1: its credits reconcile (exit 0); its grant row
 *    tampered with → exit 1, the credits summary counts it.
 *
 * Bounded: the whole run is abandoned (exit 1) after 60 s. Usage: npx tsx test/reconcile/reconcile-cli.ts
 */
import { spawn } from "node:child_process";
import pg from "pg";
import { ROOT, startLocalStack } from "../support/local-stack";

const ADMIN_TOKEN = "reconcile-test-admin-token";
const HOUR_MS = 3_600_000;
const BUDGET_MS = 60_000;

const stops: Array<() => Promise<void>> = [];
let failures = 0;

function check(ok: boolean, what: string, detail = ""): void {
  if (!ok) failures++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${!ok && detail ? `\n${detail}` : ""}`);
}

/** Runs `npm run -s reconcile -- …args` as a user would; its exit code and everything it printed. */
function runReconcile(gatewayUrl: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "-s", "reconcile", "--", ...args], {
      cwd: ROOT,
      env: { ...process.env, GATEWAY_URL: gatewayUrl, ADMIN_TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("close", (code) => resolve({ code, output }));
  });
}

async function main(): Promise<void> {
  const stack = await startLocalStack({ adminToken: ADMIN_TOKEN, name: "reconcile" });
  stops.push(stack.stop);
  const base = stack.base;

  const admin = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`POST ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  };
  const plan = await admin<{ id: string }>("/admin/v1/plans", {
    name: "reconcile",
    burstCapacity: 10,
    refillTokens: 10,
    refillPeriodSeconds: 1,
    entitlements: ["api"],
  });
  const slug = "reconcile-cli";
  const created = await admin<{ tenant: { id: string }; key: { key: string } }>("/admin/v1/tenants", {
    slug,
    name: "Reconcile CLI",
    planId: plan.id,
  });
  const tenantId = created.tenant.id;
  const proxied = await fetch(`${base}/v1/reconcile`, {
    headers: { authorization: `Bearer ${created.key.key}` },
  });
  await proxied.arrayBuffer();
  check(proxied.status === 200, `a request through the gateway answers 200 (got ${proxied.status})`);

  // The queue consumer writes the usage row (and its outbox units) within a few seconds.
  const db = new pg.Client({ connectionString: stack.postgresUrl });
  await db.connect();
  stops.push(() => db.end());
  const rows = async () =>
    Number(
      (await db.query("SELECT count(*) AS n FROM usage_events WHERE tenant_id = $1", [tenantId])).rows[0].n,
    );
  const deadline = Date.now() + 15_000;
  while ((await rows()) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  check((await rows()) === 1, "the usage row reached Postgres");

  const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const range = [
    "--from",
    new Date(hour - HOUR_MS).toISOString(),
    "--to",
    new Date(hour + 2 * HOUR_MS).toISOString(),
    "--tenant",
    tenantId,
  ];
  const clean = await runReconcile(base, range);
  check(clean.code === 0, `clean: exit 0 (got ${clean.code})`, clean.output);
  check(
    clean.output.includes("reconciled 1 tenant-hours: no differences"),
    "clean: reports 1 tenant-hour, no differences",
    clean.output,
  );

  // A usage row the tenant object never admitted (not billable, so billable units still equal the
  // outbox): the one difference is admitted 1, rows 2.
  await db.query(
    `INSERT INTO usage_events (id, tenant_id, key_id, env, method, route, status, billable, units,
       bytes_in, bytes_out, latency_ms, ts)
     SELECT id || 'x', tenant_id, key_id, env, method, route, status, false, units, bytes_in,
       bytes_out, latency_ms, ts FROM usage_events WHERE tenant_id = $1`,
    [tenantId],
  );
  const differing = await runReconcile(base, range);
  check(differing.code === 1, `difference: exit 1 (got ${differing.code})`, differing.output);
  // console.table's row: │ index │ 'tenant' │ 'hour' │ admitted │ rows │ billable │ outbox │ pending │ stripe │ 'ok' │
  const row = (differing.output.split("\n").find((l) => l.includes(`'${slug}'`)) ?? "")
    .split("│")
    .map((cell) => cell.trim().replace(/^'|'$/g, ""))
    .filter((cell) => cell !== "");
  check(
    row[1] === slug && row[3] === "1" && row[4] === "2" && row.at(-1) === "DIFF",
    "difference: the tenant's hour is listed as DIFF with admitted 1, rows 2",
    differing.output,
  );
  check(
    differing.output.includes("1 of 1 tenant-hours differ"),
    "difference: the summary counts it",
    differing.output,
  );

  // Credits: a prepaid tenant's balance in its object against the credit ledger.
  const prepaidPlan = await admin<{ id: string }>("/admin/v1/plans", {
    name: "reconcile-prepaid",
    burstCapacity: 10,
    refillTokens: 10,
    refillPeriodSeconds: 1,
    entitlements: ["api"],
    pricing: { model: "prepaid", currency: "usd", creditPack: { units: 100, amount: 500 } },
  });
  const prepaid = await admin<{ tenant: { id: string }; key: { key: string } }>("/admin/v1/tenants", {
    slug: "reconcile-prepaid",
    name: "Reconcile prepaid",
    planId: prepaidPlan.id,
  });
  const topUp = await admin<{ entry: { id: string } }>(`/admin/v1/tenants/${prepaid.tenant.id}/credits`, {
    units: 5,
    reason: "reconcile test",
    actor: "test:reconcile",
  });
  const spent = await fetch(`${base}/v1/reconcile-credits`, {
    headers: { authorization: `Bearer ${prepaid.key.key}` },
  });
  await spent.arrayBuffer();
  const spentRows = async () =>
    Number(
      (await db.query("SELECT count(*) AS n FROM usage_events WHERE tenant_id = $1", [prepaid.tenant.id]))
        .rows[0].n,
    );
  const due = Date.now() + 15_000;
  while ((await spentRows()) < 1 && Date.now() < due) await new Promise((r) => setTimeout(r, 250));
  const creditRange = [...range.slice(0, 4), "--tenant", prepaid.tenant.id];
  const creditsClean = await runReconcile(base, creditRange);
  check(
    creditsClean.code === 0 &&
      creditsClean.output.includes("credits: 1 prepaid tenants reconciled: no differences"),
    `credits: exit 0, no differences (got ${creditsClean.code})`,
    creditsClean.output,
  );
  await db.query("UPDATE credit_ledger SET units = 6 WHERE id = $1", [topUp.entry.id]);
  const creditsDiffer = await runReconcile(base, creditRange);
  check(
    creditsDiffer.code === 1 && creditsDiffer.output.includes("credits: 1 of 1 prepaid tenants differ"),
    `credits: a tampered grant row → exit 1, counted (got ${creditsDiffer.code})`,
    creditsDiffer.output,
  );
}

const timer = setTimeout(() => {
  console.error(`test:reconcile: gave up after ${BUDGET_MS / 1000} s`);
  process.exit(1);
}, BUDGET_MS);
const started = Date.now();
try {
  await main();
} catch (error) {
  failures++;
  console.error(error);
} finally {
  for (const stop of stops.reverse()) await stop().catch((error) => console.error("teardown:", error));
  clearTimeout(timer);
}
console.log(
  `test:reconcile: ${failures === 0 ? "passed" : `${failures} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
process.exit(failures === 0 ? 0 : 1);
