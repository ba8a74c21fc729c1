/**
 * `gw audit` as an operator and an auditor run it (`node cli/bin.mjs …` as a child process) against
 * the local stack (test/support/local-stack.ts): an export verifies offline and an edited or
 * shortened one is refused with exit 8 naming the seq; the gateway's own verification catches a
 * row edited in Postgres; the list filters. Entries are appended with the gateway's own
 * `appendToChains`, straight into the stack's Postgres. node:test, run by tsx.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { after, before, describe, it } from "node:test";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { appendToChains } from "../../workers/audit/append";
import type { ActionContent, RequestContent } from "../../workers/audit/chain";
import type { Db } from "../../workers/shared/db";
import { adminPost as post, runGw } from "../support/cli";
import { type LocalStack, startLocalStack } from "../support/local-stack";

const ADMIN_TOKEN = "audit-cli-test-admin-token";

let stack: LocalStack;
let db: pg.Client;
let tenantId = "";
const slug = "audit-cli-tenant";
const tmp = mkdtempSync(`${tmpdir()}/gw-audit-cli-test-`);

/** Runs the real CLI with the stack's URL and token. */
const gw = (args: string[]) => runGw(["--url", stack.base, "--token", ADMIN_TOKEN, ...args], { cwd: tmp });

const adminPost = <T>(path: string, body: unknown) => post<T>(stack.base, ADMIN_TOKEN, path, body);

const minute = (m: number) => new Date(Date.parse("2026-06-01T10:00:00Z") + m * 60_000).toISOString();

function action(m: number, verb: string): ActionContent {
  return {
    chain: tenantId,
    occurredAt: minute(m),
    actorType: "admin",
    actorId: "admin_token",
    action: verb,
    targets: [{ type: "tenant", id: tenantId }],
    changes: { name: { before: `n${m}`, after: `n${m + 1}` } },
    requestId: `req_cli${m}`,
    clientIp: "203.0.113.9",
    userAgent: "gw-test",
  };
}

function request(m: number): RequestContent {
  return {
    chain: tenantId,
    requestId: `req_clireq${m}`,
    occurredAt: minute(m),
    keyId: "key_cli",
    method: "GET",
    route: "/v1/",
    status: 200,
    clientIp: "203.0.113.9",
    userAgent: "curl/8",
  };
}

before(async () => {
  stack = await startLocalStack({ adminToken: ADMIN_TOKEN, name: "audit-cli" });
  const { id: planId } = await adminPost<{ id: string }>("/admin/v1/plans", {
    name: "audit-cli-plan",
    burstCapacity: 100,
    refillTokens: 100,
    refillPeriodSeconds: 1,
    entitlements: ["api"],
  });
  const created = await adminPost<{ tenant: { id: string } }>("/admin/v1/tenants", {
    slug,
    name: "Audit CLI",
    planId,
  });
  tenantId = created.tenant.id;
  db = new pg.Client({ connectionString: stack.postgresUrl });
  await db.connect();
  // The gateway's own append, over node-postgres instead of the Worker's driver (same SQL).
  const orm = drizzle(db) as unknown as Db;
  // Creating the tenant was itself audited (workers/audit/record.ts): start its chains empty, so the
  // entries below are seqs 1.. exactly.
  for (const table of ["audit.actions", "audit.requests", "audit.chains"])
    await db.query(`DELETE FROM ${table} WHERE chain = $1`, [tenantId]);
  await appendToChains(
    orm,
    "action",
    ["tenant.update", "key.create", "key.revoke", "key.create", "plan.change"].map((verb, i) =>
      action(i, verb),
    ),
  );
  await appendToChains(orm, "request", [0, 1, 2].map(request));
});

after(async () => {
  await db?.end();
  await stack?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("gw audit export and verify --file", () => {
  it("verifies an untouched export, and exits 8 naming the seq of an edited or a removed line", async () => {
    const file = `${tmp}/actions.ndjson`;
    const exported = await gw(["audit", "export", "--tenant", slug, "--out", file]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout, `exported 5 action entries to ${file}\n`);
    assert.equal(exported.stderr, "exporting audit action entries: 5\n");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { seq: number }).seq),
      [1, 2, 3, 4, 5],
    );

    const ok = await gw(["audit", "verify", "--file", file]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "ok: 5 action entries verify\n");
    assert.equal(ok.stderr, "");

    // An auditor's copy with one verb changed: the hash of seq 3 no longer matches its content.
    const edited = `${tmp}/edited.ndjson`;
    writeFileSync(
      edited,
      `${lines.map((l, i) => (i === 2 ? l.replace('"key.revoke"', '"key.create"') : l)).join("\n")}\n`,
    );
    const bad = await gw(["audit", "verify", "--file", edited]);
    assert.equal(bad.code, 8);
    assert.equal(bad.stdout, "");
    assert.equal(
      bad.stderr,
      `gw: Audit chain broken: action log, chain ${tenantId}, seq 3: the entry's content does not match its hash\n`,
    );

    // A line taken out: the gap is named.
    const shortened = `${tmp}/shortened.ndjson`;
    writeFileSync(shortened, `${lines.filter((_, i) => i !== 1).join("\n")}\n`);
    const gap = await gw(["audit", "verify", "--file", shortened]);
    assert.equal(gap.code, 8);
    assert.equal(
      gap.stderr,
      `gw: Audit chain broken: action log, chain ${tenantId}, seq 3: seq 3 follows 1: entries are missing\n`,
    );

    // Not an export at all: a usage error, not a verdict.
    writeFileSync(`${tmp}/junk.ndjson`, "hello\n");
    const junk = await gw(["audit", "verify", "--file", `${tmp}/junk.ndjson`]);
    assert.equal(junk.code, 2);
    assert.match(junk.stderr, /^gw: Usage error: .*junk\.ndjson line 1 is not JSON: not an audit export\n$/);
  });

  it("exports the request log as CSV", async () => {
    const file = `${tmp}/requests.csv`;
    const run = await gw([
      "audit",
      "export",
      "--tenant",
      tenantId,
      "--log",
      "request",
      "--format",
      "csv",
      "--out",
      file,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `exported 3 request entries to ${file}\n`);
    const [header, ...rows] = readFileSync(file, "utf8").trimEnd().split("\n");
    assert.equal(
      header,
      "log,chain,seq,request_id,occurred_at,key_id,method,route,status,client_ip,user_agent,prev_hash,hash",
    );
    assert.deepEqual(
      rows.map((r) => r.split(",").slice(0, 4)),
      [0, 1, 2].map((m) => ["request", tenantId, String(m + 1), `req_clireq${m}`]),
    );
  });
});

describe("gw audit verify --tenant and gw audit list", () => {
  it("documents exit 8 in --help", async () => {
    const help = await gw(["--help"]);
    assert.equal(help.code, 0);
    assert.ok(help.stdout.includes("8  audit verify found a broken chain"), help.stdout);
  });

  it("lists the newest entries, filtered, as a table or JSON", async () => {
    const json = await gw(["--json", "audit", "list", "--tenant", slug, "--action", "key.create"]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { seq: number; action: string }[]).map((e) => [e.seq, e.action]),
      [
        [4, "key.create"],
        [2, "key.create"],
      ],
    );
    const table = await gw(["audit", "list", "--tenant", slug, "--limit", "2"]);
    assert.equal(table.code, 0, table.stderr);
    const [head, ...rows] = table.stdout.trimEnd().split("\n");
    assert.match(head ?? "", /^TIME\s+TENANT\s+SEQ\s+ACTOR\s+ACTION\s+TARGETS\s+IP$/);
    assert.equal(rows.length, 2);
    assert.match(
      rows[0] ?? "",
      /^2026-06-01T10:04:00.000Z\s+ten_\S+\s+5\s+admin:admin_token\s+plan.change\s/,
    );
  });

  it("has the gateway recompute both logs, and exits 8 once a row is edited in Postgres", async () => {
    const ok = await gw(["audit", "verify", "--tenant", slug]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(
      ok.stdout,
      "ok: 5 action entries in 1 chain(s) verify\nok: 3 request entries in 1 chain(s) verify\n",
    );

    await db.query("UPDATE audit.requests SET status = 500 WHERE chain = $1 AND seq = 2", [tenantId]);
    const bad = await gw(["audit", "verify", "--tenant", slug]);
    assert.equal(bad.code, 8);
    assert.equal(
      bad.stderr,
      `gw: Audit chain broken: request log, chain ${tenantId}, seq 2: the entry's content does not match its hash\n`,
    );
  });
});
