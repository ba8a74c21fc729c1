/**
 * `npm run test:cli`: the operator CLI (`gw`, cli/) as a user runs it — `node cli/bin.mjs …` as a
 * child process, its config file in a temp dir (`GW_CONFIG`) — against the local stack
 * (test/support/local-stack.ts: Postgres, bridge, test origin, `wrangler dev`). Each test asserts what
 * the operator sees (stdout, stderr, exit code, files) and what the gateway then does with the keys
 * (a revoked key really refused, an imported key really admitted). node:test, run by tsx.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { after, before, describe, it } from "node:test";
import { parseCsvRecords } from "../../cli/csv";
import { type Run, runGw } from "../support/cli";
import { freePort, type LocalStack, ROOT, startLocalStack } from "../support/local-stack";

const ADMIN_TOKEN = "cli-test-admin-token";
/** One line on stderr: `gw: <title>: <detail> (request req_…)`. */
const ERROR_LINE = /^gw: [^:\n]+: [^\n]+ \(request req_[0-9a-z]+\)\n$/;
const PLAINTEXT = /gw_(live|test)_[A-Za-z0-9]{10,}/;

let stack: LocalStack;
const tmp = mkdtempSync(`${tmpdir()}/gw-cli-test-`);

/** Runs the real CLI; each call says which config file and environment it has. */
const gw = (args: string[], options: { config?: string; env?: Record<string, string> } = {}): Promise<Run> =>
  runGw(args, { cwd: tmp, ...options });

/** The CLI with `--url`/`--token` for the stack, `--json`, and its stdout parsed (exit 0 asserted). */
async function gwJson<T>(args: string[]): Promise<T> {
  const run = await gw(["--url", stack.base, "--token", ADMIN_TOKEN, "--json", ...args]);
  assert.equal(run.code, 0, `gw ${args.join(" ")} → ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** The CLI for people (tables), logged in by flags. */
function gwHuman(args: string[]): Promise<Run> {
  return gw(["--url", stack.base, "--token", ADMIN_TOKEN, ...args]);
}

/** A request through the gateway with an API key, as curl would send it: its status. */
async function proxied(key: string, path = "/v1/cli-test"): Promise<number> {
  const res = await fetch(`${stack.base}${path}`, { headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

let counter = 0;
/**
 * A plan and a tenant of its own for one test, made through the admin API directly (each CLI run
 * costs a Node start); the CLI's own create commands are tested once, below.
 */
async function seed(): Promise<{ plan: string; slug: string; tenantId: string; key: string }> {
  counter++;
  const admin = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${stack.base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 201, `POST ${path}: ${await res.clone().text()}`);
    return (await res.json()) as T;
  };
  const plan = `cli-plan-${counter}`;
  const { id: planId } = await admin<{ id: string }>("/admin/v1/plans", {
    name: plan,
    burstCapacity: 100,
    refillTokens: 100,
    refillPeriodSeconds: 1,
    entitlements: ["api"],
  });
  const slug = `cli-tenant-${counter}`;
  const created = await admin<{ tenant: { id: string }; key: { key: string } }>("/admin/v1/tenants", {
    slug,
    name: `CLI ${counter}`,
    planId,
  });
  return { plan, slug, tenantId: created.tenant.id, key: created.key.key };
}

before(async () => {
  stack = await startLocalStack({ adminToken: ADMIN_TOKEN, name: "cli" });
});

after(async () => {
  await stack?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("gw login and where the gateway and token come from", () => {
  it("refuses a wrong token with exit 3 and saves nothing; a right one is saved in a 0600 file", async () => {
    const config = `${tmp}/login/gw/config.json`;
    const wrong = await gw(["login", "--url", stack.base, "--token", "wrong-token"], { config });
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, ERROR_LINE);
    assert.match(wrong.stderr, /^gw: Unauthorized: /);
    assert.equal(wrong.stdout, "");
    assert.throws(() => statSync(config), /ENOENT/);

    const right = await gw(["login", "--url", `${stack.base}/`, "--token", ADMIN_TOKEN], { config });
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.stdout, `logged in to ${stack.base}; saved to ${config}\n`);
    assert.equal(statSync(config).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(config, "utf8")), { url: stack.base, token: ADMIN_TOKEN });

    // The saved file alone is enough for the next command.
    const plans = await gw(["--json", "plans", "list"], { config });
    assert.equal(plans.code, 0, plans.stderr);
    assert.ok(Array.isArray(JSON.parse(plans.stdout)));
  });

  it("takes the environment over the file, and a flag over the environment", async () => {
    const config = `${tmp}/precedence.json`;
    writeFileSync(config, JSON.stringify({ url: stack.base, token: ADMIN_TOKEN }), { mode: 0o600 });
    const dead = `http://127.0.0.1:${await freePort()}`;

    const envToken = await gw(["plans", "list"], { config, env: { GW_ADMIN_TOKEN: "env-wrong" } });
    assert.equal(envToken.code, 3, "GW_ADMIN_TOKEN beats the file's token");
    const flagToken = await gw(["--token", ADMIN_TOKEN, "plans", "list"], {
      config,
      env: { GW_ADMIN_TOKEN: "env-wrong" },
    });
    assert.equal(flagToken.code, 0, `--token beats GW_ADMIN_TOKEN: ${flagToken.stderr}`);

    const envUrl = await gw(["plans", "list"], { config, env: { GW_URL: dead } });
    assert.equal(envUrl.code, 6, "GW_URL beats the file's URL (and a dead gateway is exit 6)");
    assert.match(
      envUrl.stderr,
      /^gw: Gateway unreachable: cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\n$/,
    );
    const flagUrl = await gw(["--url", stack.base, "plans", "list"], { config, env: { GW_URL: dead } });
    assert.equal(flagUrl.code, 0, `--url beats GW_URL: ${flagUrl.stderr}`);
  });

  it("without any gateway configured: exit 2 and what to do", async () => {
    const run = await gw(["tenants", "list"]);
    assert.equal(run.code, 2);
    assert.equal(
      run.stderr,
      "gw: Usage error: no gateway URL: run 'gw login --url … --token …', or set GW_URL and GW_ADMIN_TOKEN\n",
    );
  });
});

describe("gw plans, tenants and keys against the admin API", () => {
  it("creates and updates a plan (by name), creates a tenant whose first key works, suspends and reinstates it", async () => {
    const plan = "cli-made-plan";
    const made = await gwJson<{ id: string; name: string; burstCapacity: number; entitlements: string[] }>([
      "plans",
      "create",
      "--name",
      plan,
      "--burst",
      "50",
      "--refill-tokens",
      "5",
      "--refill-period",
      "1",
      "--entitlements",
      "api,reports",
    ]);
    assert.deepEqual([made.name, made.burstCapacity, made.entitlements], [plan, 50, ["api", "reports"]]);
    const slug = "cli-made-tenant";
    const created = await gwHuman([
      "tenants",
      "create",
      "--slug",
      slug,
      "--name",
      "Made by gw",
      "--plan",
      plan,
    ]);
    assert.equal(created.code, 0, created.stderr);
    const tenantId = /^id +(ten_\w+)$/m.exec(created.stdout)?.[1] ?? "";
    assert.match(created.stdout, /\nfirst key key_\w+ \(shown once, store it now\):\ngw_live_\w+\n$/);
    const key = PLAINTEXT.exec(created.stdout)?.[0] ?? "";

    const updated = await gwJson<{ dailyQuota: number; name: string }>([
      "plans",
      "update",
      plan,
      "--daily",
      "500",
    ]);
    assert.equal(updated.dailyQuota, 500);
    const plans = await gwJson<{ name: string; dailyQuota: number | null }[]>(["plans", "list"]);
    assert.equal(plans.find((p) => p.name === plan)?.dailyQuota, 500);

    const table = await gwHuman(["tenants", "list"]);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^ID +SLUG +NAME +STATUS/);
    assert.match(table.stdout, new RegExp(`${tenantId} +${slug} +Made by gw +active`));

    assert.equal(await proxied(key), 200);
    const suspended = await gwJson<{ status: string }>(["tenants", "suspend", slug]);
    assert.equal(suspended.status, "suspended");
    assert.equal(await proxied(key), 403);
    const reinstated = await gwJson<{ status: string }>(["tenants", "reinstate", tenantId]);
    assert.equal(reinstated.status, "active");
    assert.equal(await proxied(key), 200);
  });

  it("issues a key once, lists it by prefix and last 4 only, and a revoked key is refused by the gateway", async () => {
    const { slug, tenantId } = await seed();
    const created = await gwHuman(["keys", "create", slug, "--name", "ci", "--role", "admin"]);
    assert.equal(created.code, 0, created.stderr);
    const plaintext = PLAINTEXT.exec(created.stdout)?.[0] ?? "";
    assert.match(created.stdout, /key \(shown once, store it now\):\n/);
    assert.equal(await proxied(plaintext), 200);

    const listed = await gwJson<{ id: string; name: string; tenantId: string }[]>(["keys", "list", slug]);
    const key = listed.find((k) => k.name === "ci");
    assert.ok(key);
    assert.equal(key.tenantId, tenantId);
    const listing = await gwHuman(["keys", "list", slug]);
    assert.doesNotMatch(listing.stdout, PLAINTEXT);
    assert.match(
      listing.stdout,
      new RegExp(`${key.id} +gw_live_\\w*…${plaintext.slice(-4)} +ci +live +admin +active`),
    );

    const revoked = await gwHuman(["keys", "revoke", key.id]);
    assert.equal(revoked.code, 0);
    assert.match(revoked.stdout, new RegExp(`^revoked ${key.id} `));
    assert.equal(await proxied(plaintext), 401, "a revoked key is refused on the very next request");
  });

  it("rotates a key without grace (the old one stops, the new one works) and updates a key", async () => {
    const { slug, key: first } = await seed();
    const [listed] = await gwJson<{ id: string }[]>(["keys", "list", slug]);
    assert.ok(listed);
    const rotated = await gwJson<{ key: { id: string; key: string }; previous: { id: string } }>([
      "keys",
      "rotate",
      listed.id,
      "--grace",
      "0",
    ]);
    assert.equal(rotated.previous.id, listed.id);
    assert.equal(await proxied(rotated.key.key), 200);
    assert.equal(await proxied(first), 401);

    const updated = await gwJson<{ name: string; ipAllowlist: string[] }>([
      "keys",
      "update",
      rotated.key.id,
      "--name",
      "renamed",
      "--ip",
      "192.0.2.0/24",
    ]);
    assert.deepEqual([updated.name, updated.ipAllowlist], ["renamed", ["192.0.2.0/24"]]);
    assert.equal(await proxied(rotated.key.key), 403, "outside the new allowlist");
  });

  it("never lets a tenant-supplied name write escape sequences to the operator's terminal", async () => {
    const { slug } = await seed();
    await gwJson(["keys", "create", slug, "--name", "evil\u001b]0;pwned\u0007\u001b[2J"]);
    const listing = await gwHuman(["keys", "list", slug]);
    assert.equal(listing.code, 0);
    assert.ok(!listing.stdout.includes("\u001b") && !listing.stdout.includes("\u0007"), listing.stdout);
    assert.match(listing.stdout, /evil�\]0;pwned��\[2J/);
  });
});

describe("gw output and exit codes", () => {
  it("--json prints only JSON on stdout", async () => {
    const { slug } = await seed();
    for (const args of [
      ["plans", "list"],
      ["tenants", "list"],
      ["tenants", "get", slug],
      ["keys", "list", slug],
    ]) {
      const run = await gw(["--url", stack.base, "--token", ADMIN_TOKEN, "--json", ...args]);
      assert.equal(run.code, 0, run.stderr);
      assert.doesNotThrow(() => JSON.parse(run.stdout), `gw ${args.join(" ")} prints JSON alone`);
      assert.equal(run.stderr, "");
    }
  });

  it("maps each failure to its exit code and one stderr line (problem JSON with --json)", async () => {
    const { plan, slug } = await seed();
    const missing = await gwHuman(["keys", "get", "key_doesnotexist"]);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, ERROR_LINE);
    assert.match(missing.stderr, /^gw: Not found: No such key\. \(request req_/);
    assert.equal(missing.stdout, "");

    const unknownTenant = await gwHuman(["keys", "list", "no-such-tenant"]);
    assert.equal(unknownTenant.code, 4);
    assert.equal(unknownTenant.stderr, "gw: Not found: No tenant with slug 'no-such-tenant'.\n");

    const duplicate = await gwHuman([
      "plans",
      "create",
      "--name",
      plan,
      "--burst",
      "1",
      "--refill-tokens",
      "1",
      "--refill-period",
      "1",
    ]);
    assert.equal(duplicate.code, 5);
    assert.match(
      duplicate.stderr,
      new RegExp(`^gw: Conflict: A plan named '${plan}' already exists\\. \\(request req_`),
    );

    const invalid = await gwHuman(["keys", "create", slug, "--expires", "2001-01-01T00:00:00Z"]);
    assert.equal(invalid.code, 5);
    assert.match(invalid.stderr, ERROR_LINE);
    assert.match(invalid.stderr, /^gw: Validation failed: .*\[expiresAt: must be in the future\]/);

    const json = await gw(["--url", stack.base, "--token", ADMIN_TOKEN, "--json", "keys", "get", "key_nope"]);
    assert.equal(json.code, 4);
    assert.equal(json.stdout, "");
    const problem = JSON.parse(json.stderr) as Record<string, unknown>;
    assert.equal(problem.status, 404);
    assert.equal(problem.code, "not_found");
    assert.match(String(problem.request_id), /^req_/);

    const badFlag = await gwHuman(["plans", "create", "--name", "x", "--burst", "many"]);
    assert.equal(badFlag.code, 2);
    assert.equal(
      badFlag.stderr,
      "gw: Usage error: option '--burst <n>' argument 'many' is invalid. not a whole number\n",
    );
    const unknownCommand = await gwHuman(["plan", "list"]);
    assert.equal(unknownCommand.code, 2);
    assert.match(unknownCommand.stderr, /^gw: Usage error: unknown command 'plan'/);
  });

  it("documents the exit codes in --help", async () => {
    const help = await gw(["--help"]);
    assert.equal(help.code, 0);
    for (const line of ["3  auth", "4  not found", "5  refused", "6  gateway unreachable"])
      assert.ok(help.stdout.includes(line), line);
  });
});

describe("gw keys export and import (CSV)", () => {
  it("imports keys with progress, plaintexts only in --out, per-row failures; re-import replays; export reads back", async () => {
    const { slug } = await seed();
    const input = `${tmp}/import.csv`;
    const output = `${tmp}/import-out.csv`;
    const rows = [
      "name,env,role,ipAllowlist",
      '=HYPERLINK("http://evil"),live,admin,',
      "sandbox ci,test,member,10.0.0.0/8 192.0.2.1",
      "broken,live,member,not-an-ip",
    ];
    writeFileSync(input, `${rows.join("\n")}\n`);
    const first = await gwHuman(["keys", "import", slug, "--csv", input, "--out", output]);
    assert.equal(first.code, 5, first.stderr);
    assert.doesNotMatch(first.stdout + first.stderr, PLAINTEXT, "no plaintext on the terminal");
    assert.match(first.stderr, /importing keys: 1\/3\nimporting keys: 2\/3\nimporting keys: 3\/3\n/);
    assert.match(first.stderr, /gw: row 4: Validation failed: .*ipAllowlist/);
    assert.match(first.stderr, /gw: Import incomplete: 1 of 3 rows failed/);
    assert.match(first.stdout, /created 2 keys \(plaintexts in .*import-out\.csv\), 0 skipped, 1 failed/);
    assert.equal(statSync(output).mode & 0o777, 0o600);
    const made = parseCsvRecords(readFileSync(output, "utf8")).records;
    assert.deepEqual(
      made.map((r) => [r.row, r.name, r.env, r.role]),
      [
        ["2", '=HYPERLINK("http://evil")', "live", "admin"],
        ["3", "sandbox ci", "test", "member"],
      ],
    );
    assert.equal(await proxied(made[0]?.key ?? ""), 200, "an imported live key is admitted");

    // The failed row fixed: the two made before come back (same ids), only the fixed one is new.
    writeFileSync(input, `${rows.slice(0, 3).join("\n")}\nbroken,live,member,198.51.100.7\n`);
    const clobber = await gwHuman(["keys", "import", slug, "--csv", input, "--out", output]);
    assert.equal(clobber.code, 2, "the plaintexts of the first run are never overwritten");
    assert.match(
      clobber.stderr,
      /import-out\.csv exists \(it may hold earlier keys\): choose another --out\n$/,
    );
    const again = await gwJson<{ created: { row: number; id: string }[] }>([
      "keys",
      "import",
      slug,
      "--csv",
      input,
      "--out",
      `${tmp}/import-out-2.csv`,
    ]);
    assert.deepEqual(
      again.created.slice(0, 2).map((k) => k.id),
      made.map((r) => r.id),
    );
    assert.equal(again.created.length, 3);
    const replayed = parseCsvRecords(readFileSync(`${tmp}/import-out-2.csv`, "utf8")).records;
    assert.deepEqual(
      replayed.slice(0, 2).map((r) => r.key),
      made.map((r) => r.key),
      "a replayed row writes the same plaintext again",
    );

    const exported = `${tmp}/export.csv`;
    const exportRun = await gwHuman(["keys", "export", slug, "--csv", exported]);
    assert.equal(exportRun.code, 0, exportRun.stderr);
    assert.match(exportRun.stderr, /exporting keys: 4\n/);
    const raw = readFileSync(exported, "utf8");
    assert.match(raw, /^name,env,role,ipAllowlist,/);
    assert.match(
      raw,
      /\r\n"'=HYPERLINK\(""http:\/\/evil""\)",live,admin,/,
      "a formula is defused for spreadsheets",
    );
    const back = parseCsvRecords(raw).records;
    assert.equal(back.length, 4, "the first key and three imported, nothing twice");
    assert.ok(
      back.some((r) => r.name === '=HYPERLINK("http://evil")'),
      "and reads back as it was",
    );
    assert.ok(back.some((r) => r.ipallowlist === "10.0.0.0/8 192.0.2.1" && r.env === "test"));

    // The export imports as is into another tenant: same names and attributes, a revoked key skipped.
    const revoked = back.find((r) => r.name === "sandbox ci")?.id ?? "";
    assert.equal((await gwHuman(["keys", "revoke", revoked])).code, 0);
    await gwHuman(["keys", "export", slug, "--csv", exported]);
    const other = await seed();
    const moved = await gwHuman([
      "keys",
      "import",
      other.slug,
      "--csv",
      exported,
      "--out",
      `${tmp}/moved.csv`,
    ]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /^row \d: skipped \(revoked key\)\ncreated 3 keys .*, 1 skipped, 0 failed\n$/);
    const movedKeys = await gwJson<{ name: string; role: string; env: string }[]>([
      "keys",
      "list",
      other.slug,
    ]);
    assert.deepEqual(movedKeys.map((k) => `${k.name}/${k.env}/${k.role}`).sort(), [
      '=HYPERLINK("http://evil")/live/admin',
      "broken/live/member",
      "default/live/admin",
      "default/live/admin",
    ]);
  });
});

/** `script` (util-linux) runs a command on a pseudo-terminal: how a test sees what a TTY gets. */
const hasScript = spawnSync("script", ["--version"]).status === 0;

describe("gw keys import on a terminal", () => {
  it("draws a progress bar (redrawn in place) when stderr is a TTY", {
    skip: !hasScript && "no script(1)",
  }, async () => {
    const { slug } = await seed();
    const input = `${tmp}/tty.csv`;
    writeFileSync(input, "name,env\nfirst,live\nsecond,test\n");
    const command = [process.execPath, `${ROOT}cli/bin.mjs`, "--url", stack.base, "--token", ADMIN_TOKEN]
      .concat(["keys", "import", slug, "--csv", input, "--out", `${tmp}/tty-out.csv`])
      .map((arg) => `'${arg}'`)
      .join(" ");
    // Not spawnSync: Postgres and its bridge run in this process and must keep answering meanwhile.
    const child = spawn("script", ["-qec", command, "/dev/null"], { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
    const run = { status, stdout: output };
    assert.equal(run.status, 0, run.stdout);
    assert.match(
      run.stdout,
      /\rimporting keys \[░{30}\] 0\/2\rimporting keys \[█{15}░{15}\] 1\/2\rimporting keys \[█{30}\] 2\/2\r?\n/,
    );
    assert.doesNotMatch(run.stdout, /importing keys: /, "no plain count lines on a terminal");
    assert.doesNotMatch(run.stdout, PLAINTEXT);
  });
});

describe("gw usage, reconcile and portal-link", () => {
  /** The tenant the usage test sent traffic for (its usage rows are in Postgres when it passes). */
  let busy = "";

  it("shows usage per hour with a sparkline", async () => {
    const { slug, key } = await seed();
    busy = slug;
    for (let i = 0; i < 3; i++) assert.equal(await proxied(key, `/v1/usage-${i}`), 200);
    // The queue consumer writes the rollups within seconds.
    let requests = 0;
    const deadline = Date.now() + 15_000;
    while (requests < 3 && Date.now() < deadline) {
      const usage = await gwJson<{ data: { requests: number }[] }>(["usage", slug]);
      requests = usage.data.reduce((sum, p) => sum + p.requests, 0);
      if (requests < 3) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.equal(requests, 3);
    const table = await gwHuman(["usage", slug]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^HOUR +REQUESTS +BILLABLE +UNITS +5XX +BYTES +TREND$/);
    const hour = new Date().toISOString().slice(0, 13).replace("T", " ");
    assert.match(table.stdout, new RegExp(`\\n${hour} +3 +3 +3 +0 +[\\d.]+ k?B +█\\n`));
    assert.equal(lines.length, 1 + 24 + 2, "24 hourly rows, then the total");
    assert.match(lines.at(-1) ?? "", /^3 requests {2}▁{23}█$/);
  });

  it("reconciles a tenant with traffic (the report of npm run reconcile)", async () => {
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const run = await gwHuman([
      "reconcile",
      "--from",
      new Date(hour - 3_600_000).toISOString(),
      "--to",
      new Date(hour + 3_600_000).toISOString(),
      "--tenant",
      busy,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`│ +\\d+ +│ '${busy}' +│ '[\\d -]+' +│ +3 +│ +3 +│`));
    assert.match(run.stdout, /\nreconciled 1 tenant-hours: no differences\n$/);
    assert.match(run.stderr, /reconciling day 1\/1 /);
  });

  it("prints a one-time portal link (the URL alone on stdout) that signs in to that tenant's portal, once", async () => {
    const { slug, plan } = await seed();
    const run = await gwHuman(["portal-link", slug]);
    assert.equal(run.code, 0, run.stderr);
    const url = new URL(run.stdout.trim());
    assert.equal(`${url.origin}${url.pathname}`, `${stack.base}/portal/enter`);
    assert.match(run.stderr, /^valid once, until \d{4}-\d\d-\d\dT[\d:.]+Z\n$/);

    const enter = (code: string) =>
      fetch(`${stack.base}/portal/enter`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: stack.base },
        body: new URLSearchParams({ code }).toString(),
      });
    const first = await enter(url.searchParams.get("code") ?? "");
    assert.equal(first.status, 303);
    const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const portal = await fetch(`${stack.base}/portal`, { headers: { cookie }, redirect: "manual" });
    assert.equal(portal.status, 200);
    assert.match(await portal.text(), new RegExp(`<dd>${plan}</dd>`), "the portal of that tenant");
    assert.equal((await enter(url.searchParams.get("code") ?? "")).status, 400, "the link works once");

    const missing = await gw(["--url", stack.base, "--token", ADMIN_TOKEN, "portal-link", "no-such-tenant"]);
    assert.equal(missing.code, 4, missing.stderr);
  });
});
