/**
 * `gw routes shadow` as an operator runs it (`node cli/bin.mjs …` as a child process) against the
 * local stack with a route table of its own: `/v1/mirror/` copies every GET to the test origin's
 * `/shadow/…`, which answers another status on `/mirror/status`. Real traffic goes through the
 * gateway, its usage events through the queue into Postgres; then the CLI shows the counts, the match
 * rate and the mismatch, as a table and as JSON; a prefix not in the table exits 4 with one error
 * line. node:test, run by tsx.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { after, before, describe, it } from "node:test";
import type { z } from "zod";
import type { ShadowReportSchema } from "../../workers/api/admin/shadow";
import { adminPost as post, runGw } from "../support/cli";
import { type LocalStack, startLocalStack } from "../support/local-stack";

const ADMIN_TOKEN = "routes-cli-test-admin-token";
const ERROR_LINE = /^gw: [^:\n]+: [^\n]+ \(request req_[0-9a-z]+\)\n$/;

let stack: LocalStack;
const tmp = mkdtempSync(`${tmpdir()}/gw-routes-cli-test-`);

const gw = (args: string[]) => runGw(["--url", stack.base, "--token", ADMIN_TOKEN, ...args], { cwd: tmp });

async function report(): Promise<z.infer<typeof ShadowReportSchema>> {
  const run = await gw(["--json", "routes", "shadow", "/v1/mirror/"]);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

describe("gw routes shadow", () => {
  before(async () => {
    stack = await startLocalStack({
      adminToken: ADMIN_TOKEN,
      name: "routes-cli",
      routes: (origin) => [
        {
          prefix: "/v1/mirror/",
          entitlement: "api",
          shadow: { origin: `${origin}/shadow`, sampleRate: 1, timeoutMs: 2000 },
        },
      ],
    });
  });
  after(async () => {
    await stack?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("shows a route's counts, match rate and mismatches once its traffic is metered", async () => {
    const plan = await post<{ id: string }>(stack.base, ADMIN_TOKEN, "/admin/v1/plans", {
      name: "routes-cli",
      burstCapacity: 100,
      refillTokens: 100,
      refillPeriodSeconds: 1,
      entitlements: ["api"],
    });
    const { key } = await post<{ key: { key: string } }>(stack.base, ADMIN_TOKEN, "/admin/v1/tenants", {
      slug: "routes-cli",
      name: "Routes CLI",
      planId: plan.id,
    });
    for (const path of ["same/1", "same/2", "status/1"]) {
      const res = await fetch(`${stack.base}/v1/mirror/${path}`, {
        headers: { authorization: `Bearer ${key.key}` },
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    // The events go through the queue (flushed within 250 ms, consumed in batches within a second or so).
    let r = await report();
    for (let waited = 0; r.compared < 3 && waited < 30_000; waited += 500) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      r = await report();
    }
    assert.deepEqual(
      { compared: r.compared, matched: r.matched, mismatched: r.mismatched, failed: r.failed },
      { compared: 3, matched: 2, mismatched: 1, failed: 0 },
    );
    assert.equal(r.mismatches[0]?.path, "/v1/mirror/status/1");

    const human = await gw(["routes", "shadow", "v1/mirror"]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^route\s+\/v1\/mirror\/$/m);
    assert.match(human.stdout, /^match rate\s+66\.7 %$/m);
    assert.match(human.stdout, /\/v1\/mirror\/status\/1\s+status 200→503/);
  });

  it("exits 4 with one error line for a prefix not in the route table", async () => {
    const run = await gw(["routes", "shadow", "/v9/"]);
    assert.equal(run.code, 4);
    assert.match(run.stderr, ERROR_LINE);
    assert.equal(run.stdout, "");
  });
});
