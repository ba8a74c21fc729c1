/**
 * The V8 heaps inside a workerd process, read through its inspector (Chrome DevTools Protocol): one
 * target per isolate (the Worker with its Durable Objects, and Miniflare's own services such as the
 * KV, cache and queue simulators). For each: a heap snapshot (`HeapProfiler.takeHeapSnapshot`, which
 * runs a full GC first; workerd does not answer `HeapProfiler.collectGarbage`), then
 * `Runtime.getHeapUsage` — what the isolate's JavaScript still holds, what V8 has committed for it,
 * and the ArrayBuffer backing stores outside the heap. Growth of the first across a soak is a leak in
 * that isolate's code; RSS growth that no heap shows is the runtime's own memory (its allocator,
 * storage, network buffers). With `snapshotDir`, each snapshot is kept there (open two in Chrome
 * DevTools' Memory tab and compare them to see what grew).
 */
import { createWriteStream, mkdirSync } from "node:fs";
import WebSocket from "ws";

export interface IsolateHeap {
  /** the inspector target's title (workerd names the service, e.g. `workerd: worker core:user:gateway`) */
  title: string;
  /** MiB the isolate's heap holds after a full GC */
  usedMiB: number;
  /** MiB V8 has committed for it */
  totalMiB: number;
  /** MiB of ArrayBuffer backing stores (bodies, buffers) the isolate holds outside its heap */
  backingMiB: number;
}

interface Target {
  title: string;
  webSocketDebuggerUrl: string;
}

const MiB = 1024 * 1024;

/** Every isolate's heap, after a full GC in each. */
export async function isolateHeaps(
  inspectorPort: number,
  opts: { snapshotDir?: string; label?: string; timeoutMs?: number } = {},
): Promise<IsolateHeap[]> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const list = await fetch(`http://127.0.0.1:${inspectorPort}/json/list`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  // `core:custom-fetch:…` targets are Node functions bound as services (the bench's queue control):
  // listed, but no isolate behind them answers.
  const targets = ((await list.json()) as Target[]).filter((t) => !t.title.includes("core:custom-fetch:"));
  const heaps: IsolateHeap[] = [];
  for (const t of targets) {
    const file = opts.snapshotDir
      ? `${opts.snapshotDir}/${opts.label ?? "heap"}-${t.title.replace(/^workerd: worker /, "").replace(/[^\w.-]+/g, "_")}.heapsnapshot`
      : undefined;
    heaps.push(
      await heapOf(t, timeoutMs, file).catch((err: unknown) => {
        process.stderr.write(`heap of ${t.title} (${t.webSocketDebuggerUrl}): ${err}\n`);
        return { title: t.title, usedMiB: Number.NaN, totalMiB: Number.NaN, backingMiB: Number.NaN };
      }),
    );
  }
  return heaps.sort((a, b) => a.title.localeCompare(b.title));
}

async function heapOf(target: Target, timeoutMs: number, file: string | undefined): Promise<IsolateHeap> {
  if (file) mkdirSync(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  const out = file ? createWriteStream(file) : undefined;
  // Targets of Durable Object classes are named `service#Class`: the `#` must reach workerd, not end the URL.
  const ws = new WebSocket(target.webSocketDebuggerUrl.replaceAll("#", "%23"), { maxPayload: 1024 * MiB });
  const pending = new Map<number, (result: Record<string, number>) => void>();
  let nextId = 1;
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, number>>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
      setTimeout(() => reject(new Error(`${target.title}: ${method} timed out`)), timeoutMs).unref();
    });
  ws.on("message", (data) => {
    const msg = JSON.parse(String(data)) as {
      id?: number;
      method?: string;
      result?: Record<string, number>;
      params?: { chunk?: string };
    };
    if (msg.method === "HeapProfiler.addHeapSnapshotChunk") out?.write(msg.params?.chunk ?? "");
    else if (msg.id !== undefined) pending.get(msg.id)?.(msg.result ?? {});
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  try {
    await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    const usage = await call("Runtime.getHeapUsage");
    return {
      title: target.title,
      usedMiB: (usage.usedSize ?? 0) / MiB,
      totalMiB: (usage.totalSize ?? 0) / MiB,
      backingMiB: (usage.backingStorageSize ?? 0) / MiB,
    };
  } finally {
    ws.close();
    await new Promise<void>((resolve) => (out ? out.end(resolve) : resolve()));
  }
}
