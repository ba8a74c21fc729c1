/**
 * `npm run test:wire`: the hostile request shapes a `Request` object cannot carry, sent as raw bytes
 * over a socket to the real Worker bundle (`wrangler deploy --dry-run`) on workerd (Miniflare API,
 * direct socket: no entry worker or dev-server wrapper rewrites the request). Complements
 * test/integration/hostile-input.test.ts and test/fuzz/hostile-shapes.test.ts, which run in the
 * vitest pool and so only see what `new Request()` accepts.
 *
 * Every case is sent without an API key: a shape the gateway refuses answers 400 `bad_request`
 * (before authentication), a shape it lets through answers 401 — so no database, KV record or origin
 * is needed, and a 401 proves the request reached the Worker's authentication intact.
 *
 * Usage: npx tsx test/wire/hostile-wire.ts   (exits 1 if any case answers otherwise)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

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

/** Sends raw bytes, returns the status and the problem detail (if any) of the answer. */
function send(port: number, bytes: Buffer): Promise<{ status: number; detail?: string; raw: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    const done = () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      const detail = /"detail":"((?:[^"\\]|\\.)*)"/.exec(data)?.[1];
      resolve({ status, detail: detail === undefined ? undefined : JSON.parse(`"${detail}"`), raw: data });
    };
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1");
    });
    socket.on("end", done);
    socket.on("error", done);
    socket.setTimeout(5_000, () => {
      socket.destroy();
      done();
    });
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
        // Never used: every case is refused before a lookup, or at authentication without a key.
        DATABASE_URL: "postgres://unused@127.0.0.1:1/unused",
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
  } finally {
    await mf?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
