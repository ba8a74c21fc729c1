/**
 * `gw webhooks` as an operator runs it (`node cli/bin.mjs …` as a child process) against the local
 * stack (test/support/local-stack.ts): the commands are listed in --help; a dead delivery (made dead
 * straight in the stack's Postgres, recorded with the gateway's own `recordEvents`) is listed by
 * `dead-letters`, as JSON too and filtered by tenant slug; `retry` queues it again (pending,
 * replays + 1); a retry on a disabled endpoint exits 5 with one error line, an unknown id exits 4.
 * node:test, run by tsx.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { after, before, describe, it } from "node:test";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { recordEvents } from "../../workers/events/emit";
import type { Db } from "../../workers/shared/db";
import { newId } from "../../workers/shared/ids";
import { adminPost as post, runGw } from "../support/cli";
import { type LocalStack, startLocalStack } from "../support/local-stack";

const ADMIN_TOKEN = "webhooks-cli-test-admin-token";
/** One line on stderr: `gw: <title>: <detail> (request req_…)`. */
const ERROR_LINE = /^gw: [^:\n]+: [^\n]+ \(request req_[0-9a-z]+\)\n$/;

let stack: LocalStack;
let db: pg.Client;
const tmp = mkdtempSync(`${tmpdir()}/gw-webhooks-cli-test-`);

/** Runs the real CLI with the stack's URL and token. */
const gw = (args: string[]) => runGw(["--url", stack.base, "--token", ADMIN_TOKEN, ...args], { cwd: tmp });

const adminPost = <T>(path: string, body: unknown) => post<T>(stack.base, ADMIN_TOKEN, path, body);

/** A tenant (by slug) with one endpoint, and one delivery to it made dead as the engine leaves it. */
async function deadDelivery(
  slug: string,
  planId: string,
): Promise<{ tenantId: string; deliveryId: string; endpointId: string }> {
  const { tenant } = await adminPost<{ tenant: { id: string } }>("/admin/v1/tenants", {
    slug,
    name: slug,
    planId,
  });
  const endpointId = newId("whep");
  await db.query("INSERT INTO webhook_endpoints (id, tenant_id, url, secret) VALUES ($1, $2, $3, $4)", [
    endpointId,
    tenant.id,
    `https://${slug}.example.invalid/hooks`,
    `whsec_${btoa("x".repeat(32))}`,
  ]);
  // The gateway's own recording, over node-postgres instead of the Worker's driver (same SQL).
  const [deliveryId] = await recordEvents(drizzle(db) as unknown as Db, [
    {
      tenantId: tenant.id,
      type: "key.created",
      data: { keyId: newId("key"), env: "live", prefix: "gw_live_ab12", name: "ci" },
    },
  ]);
  assert.ok(deliveryId, "the event recorded no delivery");
  await db.query(
    "UPDATE webhook_deliveries SET status = 'dead', attempts = 8, last_status = 503, next_attempt_at = NULL WHERE id = $1",
    [deliveryId],
  );
  return { tenantId: tenant.id, deliveryId, endpointId };
}

let one: { tenantId: string; deliveryId: string; endpointId: string };
let off: { tenantId: string; deliveryId: string; endpointId: string };

before(async () => {
  stack = await startLocalStack({ adminToken: ADMIN_TOKEN, name: "webhooks-cli" });
  db = new pg.Client({ connectionString: stack.postgresUrl });
  await db.connect();
  const { id: planId } = await adminPost<{ id: string }>("/admin/v1/plans", {
    name: "webhooks-cli-plan",
    burstCapacity: 100,
    refillTokens: 100,
    refillPeriodSeconds: 1,
    entitlements: ["api"],
  });
  one = await deadDelivery("webhooks-cli-one", planId);
  off = await deadDelivery("webhooks-cli-off", planId);
  await db.query("UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'failing' WHERE id = $1", [
    off.endpointId,
  ]);
});

after(async () => {
  await db?.end();
  await stack?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("gw webhooks", () => {
  it("lists its commands in --help", async () => {
    const help = await gw(["webhooks", "--help"]);
    assert.equal(help.code, 0, help.stderr);
    for (const command of ["list", "dead-letters", "retry <delivery>"])
      assert.match(help.stdout, new RegExp(`\\n  ${command} `));
  });

  it("lists dead deliveries (JSON, a table, by tenant slug) and a tenant's endpoints", async () => {
    const json = await gw(["webhooks", "dead-letters", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stderr, "");
    const all = JSON.parse(json.stdout) as {
      id: string;
      status: string;
      attemptCount: number;
      endpointUrl: string;
    }[];
    const mine = all.find((d) => d.id === one.deliveryId);
    assert.deepEqual(
      { status: mine?.status, attempts: mine?.attemptCount, url: mine?.endpointUrl },
      { status: "dead", attempts: 8, url: "https://webhooks-cli-one.example.invalid/hooks" },
    );
    assert.ok(all.some((d) => d.id === off.deliveryId));

    const filtered = await gw(["webhooks", "dead-letters", "--tenant", "webhooks-cli-one"]);
    assert.equal(filtered.code, 0, filtered.stderr);
    assert.match(filtered.stdout, new RegExp(one.deliveryId));
    assert.match(filtered.stdout, /key\.created/);
    assert.doesNotMatch(filtered.stdout, new RegExp(off.deliveryId));

    const endpoints = await gw(["webhooks", "list", "--tenant", "webhooks-cli-off"]);
    assert.equal(endpoints.code, 0, endpoints.stderr);
    assert.match(endpoints.stdout, new RegExp(off.endpointId));
    assert.match(endpoints.stdout, /disabled \(failing\)/);
  });

  it("retries a dead delivery (pending, replays + 1); a disabled endpoint exits 5, an unknown id 4", async () => {
    const retried = await gw(["webhooks", "retry", one.deliveryId, "--json"]);
    assert.equal(retried.code, 0, retried.stderr);
    const delivery = JSON.parse(retried.stdout) as { status: string; replays: number };
    assert.deepEqual(
      { status: delivery.status, replays: delivery.replays },
      { status: "pending", replays: 1 },
    );
    // The stack's consumer then sends it once more (and, its 8 attempts spent, it may die again).
    const replayed = await db.query("SELECT replays FROM webhook_deliveries WHERE id = $1", [one.deliveryId]);
    assert.deepEqual(replayed.rows[0], { replays: 1 });

    const refused = await gw(["webhooks", "retry", off.deliveryId]);
    assert.equal(refused.code, 5);
    assert.equal(refused.stdout, "");
    assert.match(refused.stderr, ERROR_LINE);
    assert.match(refused.stderr, /endpoint is disabled/);
    const { rows } = await db.query("SELECT status, replays FROM webhook_deliveries WHERE id = $1", [
      off.deliveryId,
    ]);
    assert.deepEqual(rows[0], { status: "dead", replays: 0 });

    const unknown = await gw(["webhooks", "retry", "dlv_nope"]);
    assert.equal(unknown.code, 4);
    assert.match(unknown.stderr, ERROR_LINE);
  });
});
