/**
 * `npm run test:wire`: the hostile request shapes a `Request` object cannot carry, sent as raw bytes
 * over a socket to the real Worker bundle (`wrangler deploy --dry-run`) on workerd (Miniflare API,
 * direct socket: no entry worker or dev-server wrapper rewrites the request). Complements
 * test/integration/hostile-input.test.ts and test/fuzz/, which run in the vitest pool and so only
 * see what `new Request()` accepts.
 *
 * Why not `wrangler dev` (issue 9 says "against wrangler dev"): `wrangler dev` bundles the Worker
 * with the same esbuild step as `wrangler deploy --dry-run` and runs it in the same workerd through
 * Miniflare, with the bindings `unstable_getMiniflareWorkerOptions` reads from wrangler.toml here;
 * what it adds is a proxy/entry worker in front of the user Worker, which re-serialises each request
 * (and would hide exactly the raw bytes sent here) and needs a dev server, a port file and a
 * readiness poll. The direct socket reaches workerd's own HTTP parser and then the Worker, as a
 * deployed Worker sees the edge's parsed request. Same runtime, same bundle, no wrapper.
 *
 * Two parts:
 * 1. Fixed cases, sent without an API key: a shape the gateway refuses answers 400 `bad_request`
 *    (before authentication), a shape it lets through answers 401 — so a 401 proves the request
 *    reached the Worker's authentication intact.
 * 2. A generated campaign (fast-check, fixed seed, bounded count and time) with a valid API key
 *    (its KV records seeded into the local namespace; the hot path reads nothing else) and a real
 *    origin (test/support/origin-server.ts): `..;` and `;` parameters, backslashes, raw and encoded
 *    dot segments climbing out of `/v1/`, GET/HEAD with a body, bad header-name and header-value
 *    bytes. Every answer must be a 4xx — never a 5xx, never the origin's — and the origin must have
 *    received none of the campaign's requests. `WIRE_SEED` replays another seed.
 *
 * Usage: npx tsx test/wire/hostile-wire.ts   (exits 1 if any case answers otherwise)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { generateKey, hashKey } from "../../workers/shared/api-keys";
import { startOriginServer } from "../support/origin-server";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface Case {
  name: string;
  bytes: Buffer;
  /** Expected status, and the problem detail when the gateway (not workerd's parser) answers. */
  status: number;
  detail?: string;
}

const req = (head: string, tail: Buffer | string = "") =>
  Buffer.concat([Buffer.from(`${head}Connection: close\r\n\r\n`, "latin1"), Buffer.from(tail as string)]);
const GET = "GET /v1/x HTTP/1.1\r\nHost: gateway.test\r\n";
const BODY = "A GET request cannot carry a body.";
const CONTROL = (name: string) => `The ${name} header contains a control character.`;
const TOKEN = "A header name contains characters outside the HTTP token set.";
const PATH = "The request path contains encoded separators, path parameters (;) or empty segments.";

const CASES: Case[] = [
  { name: "GET, no body", bytes: req(GET), status: 401 },
  {
    name: "GET, body by Content-Length",
    bytes: req(`${GET}Content-Length: 3\r\n`, "abc"),
    status: 400,
    detail: BODY,
  },
  {
    name: "GET, chunked body",
    bytes: req(`${GET}Transfer-Encoding: chunked\r\n`, "3\r\nabc\r\n0\r\n\r\n"),
    status: 400,
    detail: BODY,
  },
  {
    name: "HEAD, body by Content-Length",
    bytes: req("HEAD /v1/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 3\r\n", "abc"),
    status: 400,
  },
  { name: "GET, Content-Length: 0", bytes: req(`${GET}Content-Length: 0\r\n`), status: 401 },
  {
    name: "POST with a body",
    bytes: req("POST /v1/x HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 3\r\n", "abc"),
    status: 401,
  },
  { name: "value with 0x01", bytes: req(`${GET}X-V: a\x01b\r\n`), status: 400, detail: CONTROL("x-v") },
  { name: "value with 0x1f", bytes: req(`${GET}X-V: a\x1fb\r\n`), status: 400, detail: CONTROL("x-v") },
  { name: "value with DEL", bytes: req(`${GET}X-V: a\x7fb\r\n`), status: 400, detail: CONTROL("x-v") },
  { name: "value with HTAB and obs-text", bytes: req(`${GET}X-V: a\tb \xe9\r\n`), status: 401 },
  { name: "name with byte 0xE9", bytes: req(`${GET}X-Caf\xe9: 1\r\n`), status: 400, detail: TOKEN },
  { name: "name with a space (runtime refuses)", bytes: req(`${GET}X Bad: 1\r\n`), status: 400 },
  { name: "name with ( (runtime refuses)", bytes: req(`${GET}X(Bad): 1\r\n`), status: 400 },
  { name: "value with bare CR (runtime refuses)", bytes: req(`${GET}X-V: a\rb\r\n`), status: 400 },
  { name: "value with NUL (runtime refuses)", bytes: req(`${GET}X-V: a\x00b\r\n`), status: 400 },
  { name: "obs-fold (runtime unfolds it)", bytes: req(`${GET}X-V: a\r\n b\r\n`), status: 401 },
  {
    name: "path /v1/..;/admin/v1/plans",
    bytes: req("GET /v1/..;/admin/v1/plans HTTP/1.1\r\nHost: gateway.test\r\n"),
    status: 400,
    detail: PATH,
  },
  {
    name: "path /v1/x;jsessionid=1",
    bytes: req("GET /v1/x;jsessionid=1 HTTP/1.1\r\nHost: gateway.test\r\n"),
    status: 400,
    detail: PATH,
  },
];

/**
 * Whether `data` holds a whole response: the head, then Content-Length bytes or the last chunk (a
 * HEAD answer has no body). The Worker may hold the connection open after answering (its
 * `waitUntil` work), so waiting for the socket to close would wait for that, not for the answer.
 */
function complete(data: string, head: boolean): boolean {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return false;
  if (head) return true;
  const body = data.length - (end + 4);
  const length = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end));
  if (length) return body >= Number(length[1]);
  if (/\r\ntransfer-encoding: *chunked/i.test(data.slice(0, end))) return data.endsWith("0\r\n\r\n");
  return false;
}

/** Sends raw bytes, returns the status and the problem detail (if any) of the answer. */
function send(port: number, bytes: Buffer): Promise<{ status: number; detail?: string; raw: string }> {
  const head = bytes.subarray(0, 5).toString("latin1") === "HEAD ";
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      const detail = /"detail":"((?:[^"\\]|\\.)*)"/.exec(data)?.[1];
      resolve({ status, detail: detail === undefined ? undefined : JSON.parse(`"${detail}"`), raw: data });
    };
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1");
      if (complete(data, head)) done();
    });
    socket.on("end", done);
    socket.on("error", done);
    socket.setTimeout(5_000, done);
    socket.write(bytes);
  });
}

class QuietLog extends Log {
  constructor() {
    super(LogLevel.ERROR);
  }
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(`${tmpdir()}/gw-wire-`);
  const origin = await startOriginServer();
  let mf: Miniflare | undefined;
  try {
    execFileSync(`${ROOT}node_modules/.bin/wrangler`, ["deploy", "--dry-run", "--outdir", `${tmp}/bundle`], {
      cwd: ROOT,
      stdio: "ignore",
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
    });
    const { workerOptions } = unstable_getMiniflareWorkerOptions(`${ROOT}wrangler.toml`);
    const worker = {
      ...(workerOptions as WorkerOptions),
      name: "gateway",
      modules: true,
      modulesRoot: `${tmp}/bundle`,
      scriptPath: `${tmp}/bundle/index.js`,
      bindings: {
        ...(workerOptions.bindings ?? {}),
        // Never used: the fixed cases stop at authentication, and the campaign's key is in KV (the
        // hot path makes no Postgres query).
        DATABASE_URL: "postgres://unused@127.0.0.1:1/unused",
        ORIGIN_URL: origin.url,
        SANDBOX_ORIGIN_URL: `${origin.url}/sandbox`,
        CLAIMS_SECRET: "wire-test-claims-secret",
        ADMIN_TOKEN: "wire-test-admin-token",
      },
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    } as WorkerOptions & { name: string };
    mf = new Miniflare({
      host: "127.0.0.1",
      port: 0,
      log: new QuietLog(),
      defaultPersistRoot: `${tmp}/state`,
      handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
        stdout.resume();
        stderr.resume();
      },
      workers: [worker],
    });
    await mf.ready;
    const port = Number((await mf.unsafeGetDirectURL("gateway")).port);

    let failed = 0;
    for (const c of CASES) {
      const got = await send(port, c.bytes);
      const ok = got.status === c.status && (c.detail === undefined || got.detail === c.detail);
      if (!ok) failed++;
      const said = got.detail ?? (got.raw.split("\r\n\r\n")[1] ?? "").slice(0, 60);
      console.log(`${ok ? "ok  " : "FAIL"} ${c.name.padEnd(38)} ${got.status} ${said}`);
      if (!ok) console.log(`     expected ${c.status}${c.detail ? ` "${c.detail}"` : ""}`);
    }
    console.log(`${CASES.length - failed}/${CASES.length} wire cases as expected.`);
    if (failed > 0) process.exitCode = 1;

    const key = await seedKey(mf);
    if (!(await campaign(port, key, origin.url))) process.exitCode = 1;
  } finally {
    await mf?.dispose();
    await origin.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- The generated campaign --------------------------------------------------------------------------

/** A live key for a tenant on a plan with room for the whole campaign, written where the Worker reads it. */
async function seedKey(mf: Miniflare): Promise<string> {
  const key = generateKey("live");
  const kv = await mf.getKVNamespace("API_KEYS");
  const limits = { burstCapacity: 1_000_000, refillTokens: 1_000_000, refillPeriodSeconds: 1 };
  await kv.put(
    `apikey:${await hashKey(key)}`,
    JSON.stringify({
      keyId: "key_wire",
      tenantId: "ten_wire",
      env: "live",
      role: "admin",
      ipAllowlist: [],
      expiresAt: null,
      revokedAt: null,
      rateLimit: null,
    }),
  );
  await kv.put(
    "tenant:ten_wire",
    JSON.stringify({
      id: "ten_wire",
      version: 1,
      slug: "wire",
      status: "active",
      plan: { id: "plan_wire", name: "wire", entitlements: ["api"] },
      limits: { ...limits, dailyQuota: null, monthlyQuota: null },
    }),
  );
  return key;
}

/** One raw request: a request line, header lines, an optional body, then `Connection: close`. */
interface Shape {
  family: string;
  method: string;
  target: string;
  headers: string[];
  body?: string;
}

function bytesOf(s: Shape): Buffer {
  const head = `${s.method} ${s.target} HTTP/1.1\r\nHost: gateway.test\r\n${s.headers.map((h) => `${h}\r\n`).join("")}`;
  return req(head, s.body ?? "");
}

const latin1 = (codes: number[]) => String.fromCharCode(...codes);

/** Dot-dot in the spellings a normaliser may honour; `..;` is `..` to a servlet container. */
const CLIMB = ["..", "..;", "%2e%2e", "%2E%2e", ".%2e", "%2e.", "..;x=1", "..\\", "..%5c"];
const SEP = ["/", "\\", "%5c", "%5C", "//"];
/** Where a climb out of `/v1/` lands: never a route, `/health` or the tenant API (those answer 2xx or need Postgres). */
const LAND = ["admin/v1/plans", "admin/v1/tenants", "admin", "v2/x", "dead-end", ""];

const wireShape = (marker: string, key: string): fc.Arbitrary<Shape> => {
  const auth = `Authorization: Bearer ${key}`;
  const q = `?fz=${marker}`;
  const climbing = fc
    .tuple(
      fc.array(fc.tuple(fc.constantFrom(...CLIMB), fc.constantFrom(...SEP)), { minLength: 1, maxLength: 4 }),
      fc.constantFrom(...LAND),
    )
    .map(
      ([climbs, land]): Shape => ({
        family: "dot segments out of /v1/",
        method: "GET",
        target: `/v1/${climbs.map(([c, sep]) => c + sep).join("")}${land}${q}`,
        headers: [auth],
      }),
    );
  const params = fc
    .tuple(
      fc.constantFrom("x", "a/b", ".", "..", ""),
      fc.constantFrom(";", ";x=1", ";jsessionid=1", "..;", ".;", "\\", "\\..\\", "%5c"),
      fc.constantFrom("admin/v1/plans", "x", "", "..;/admin"),
    )
    .map(
      ([lead, odd, tail]): Shape => ({
        family: "; parameters and backslashes under /v1/",
        method: "GET",
        target: `/v1/${lead}${odd}/${tail}${q}`,
        headers: [auth],
      }),
    );
  const bodyOnGet = fc
    .tuple(fc.constantFrom("GET", "HEAD"), fc.string({ minLength: 1, maxLength: 64 }), fc.boolean())
    .map(
      ([method, body, chunked]): Shape => ({
        family: "GET/HEAD with a body",
        method,
        target: `/v1/${marker}/body${q}`,
        headers: [
          auth,
          chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${Buffer.byteLength(body)}`,
        ],
        body: chunked ? `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n` : body,
      }),
    );
  const badName = fc
    .tuple(
      fc.stringMatching(/^[a-z]{1,6}$/),
      fc.oneof(
        fc.integer({ min: 0x80, max: 0xff }),
        fc.constantFrom(...Array.from('()<>@,;\\"/[]?={} ', (c) => c.charCodeAt(0))),
      ),
      fc.stringMatching(/^[a-z]{0,6}$/),
    )
    .map(
      ([a, bad, b]): Shape => ({
        family: "bad header-name bytes",
        method: "GET",
        target: `/v1/${marker}/name${q}`,
        headers: [auth, `X-${a}${latin1([bad])}${b}: 1`],
      }),
    );
  const CONTROLS = [...Array.from({ length: 32 }, (_, i) => i).filter((c) => c !== 0x09 && c !== 0x0a), 0x7f];
  const badValue = fc
    .tuple(fc.stringMatching(/^[a-z]{0,6}$/), fc.constantFrom(...CONTROLS), fc.stringMatching(/^[a-z]{0,6}$/))
    .map(
      ([a, bad, b]): Shape => ({
        family: "bad header-value bytes",
        method: "GET",
        target: `/v1/${marker}/value${q}`,
        headers: [auth, `X-V: x${a}${latin1([bad])}${b}`],
      }),
    );
  return fc.oneof(climbing, params, bodyOnGet, badName, badValue);
};

/**
 * Sends the generated shapes with a valid key: each must be answered 4xx by the gateway (or by
 * workerd's parser), never 5xx, never by the origin; then the origin must hold no call for the run.
 */
async function campaign(port: number, key: string, originUrl: string): Promise<boolean> {
  // The control: a plain request with this key does reach the origin (so "not forwarded" means something).
  const control = await send(
    port,
    req(`GET /v1/wire-control HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${key}\r\n`),
  );
  if (control.status !== 200 || !/x-origin: test/i.test(control.raw)) {
    console.log(
      `FAIL control: a plain request with the seeded key answered ${control.status}, not the origin's 200`,
    );
    return false;
  }
  const seed = Number(process.env.WIRE_SEED ?? 0x77697265);
  const marker = `wire${Date.now().toString(36)}`;
  const families = new Map<string, number[]>();
  const started = Date.now();
  let sent = 0;
  try {
    await fc.assert(
      fc.asyncProperty(wireShape(marker, key), async (shape) => {
        sent++;
        const got = await send(port, bytesOf(shape));
        const fromOrigin = /\r\nx-origin: test\r\n/i.test(got.raw);
        families.set(shape.family, [...(families.get(shape.family) ?? []), got.status]);
        if (got.status < 400 || got.status >= 500 || fromOrigin) {
          throw new Error(
            `${shape.family}: ${JSON.stringify(bytesOf(shape).toString("latin1"))} answered ${got.status}${fromOrigin ? " from the origin" : ""}: ${got.raw.slice(0, 300)}`,
          );
        }
      }),
      { numRuns: 400, seed, interruptAfterTimeLimit: 90_000, markInterruptAsFailure: false },
    );
  } catch (error) {
    console.log(
      `FAIL campaign (WIRE_SEED=${seed}): ${error instanceof Error ? error.message : String(error)}`,
    );
    return false;
  }
  const calls = (await (await fetch(`${originUrl}/__calls?contains=${marker}`)).json()) as unknown[];
  for (const [family, statuses] of families) {
    const counts = [...new Set(statuses)].map((s) => `${s}×${statuses.filter((x) => x === s).length}`);
    console.log(`ok   ${family.padEnd(42)} ${statuses.length} sent: ${counts.join(", ")}`);
  }
  if (calls.length > 0) {
    console.log(
      `FAIL the origin received ${calls.length} of the campaign's requests, e.g. ${JSON.stringify(calls[0])}`,
    );
    return false;
  }
  console.log(
    `campaign: ${sent} generated shapes (WIRE_SEED=${seed}) in ${Date.now() - started} ms, all 4xx, none reached the origin.`,
  );
  return true;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
