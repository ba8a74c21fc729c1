/**
 * The benchmark origin: a tiny Node HTTP server that answers every request with the same small JSON
 * body, and counts requests per path (so the bench can check what the gateway actually let through).
 *
 *   GET  /__stats  → { "counts": { "<path>": n, … } }   (not counted)
 *
 * A slow mode for the fair-shedding scenario (bench/lib/shedding.ts): `ORIGIN_DELAY_MS` (each answer
 * takes this long) and `ORIGIN_CONCURRENCY` (at most this many are being answered at once; the rest
 * wait in a FIFO queue, as an overloaded origin's worker pool does). Unset: every request at once, no delay.
 *
 * Run as its own process (`node --import tsx bench/origin.ts`), so its CPU time can be sampled apart
 * from the proxies in front of it. Prints one JSON line `{"port":…}` on stdout once listening.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const BODY = Buffer.from('{"ok":true,"message":"hello from the bench origin"}\n');
const counts = new Map<string, number>();
const DELAY_MS = Number(process.env.ORIGIN_DELAY_MS ?? 0);
const CONCURRENCY = Number(process.env.ORIGIN_CONCURRENCY ?? 0);
let serving = 0;
const waiting: Array<() => void> = [];

/** Answers after DELAY_MS, holding one of CONCURRENCY slots for that time (FIFO for a slot). */
function slowly(answer: () => void): void {
  if (CONCURRENCY > 0 && serving >= CONCURRENCY) {
    waiting.push(() => slowly(answer));
    return;
  }
  serving++;
  setTimeout(() => {
    serving--;
    answer();
    waiting.shift()?.();
  }, DELAY_MS);
}

const server = createServer((req, res) => {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  if (path === "/__stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ counts: Object.fromEntries(counts) }));
    return;
  }
  counts.set(path, (counts.get(path) ?? 0) + 1);
  // Drain any request body before answering, so keep-alive connections stay usable.
  req.resume();
  req.on("end", () => {
    const answer = () => {
      if (res.destroyed) return;
      res.writeHead(200, { "content-type": "application/json", "content-length": BODY.length });
      res.end(BODY);
    };
    if (DELAY_MS > 0) slowly(answer);
    else answer();
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});

const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The bench closes our stdin when it goes away (even on SIGKILL): never outlive it.
process.stdin.on("end", stop);
process.stdin.resume();
