/**
 * Where the gateway's CPU goes, step by step: V8's sampling profiler in workerd, through its
 * inspector (Chrome DevTools Protocol `Profiler.start` / `Profiler.stop`), on every isolate target of
 * the gateway's workerd (the Worker, and its Durable Object class) while wrk drives load.
 *
 * Every sample is charged to a step of the request path by its stack: from the innermost frame
 * outwards, the first frame in one of the gateway's own source files decides (library frames — hono,
 * zod, hono/jwt — count for the gateway file that called them; a stack with none of ours is the
 * framework's routing and context). The bundle `wrangler deploy --dry-run` writes is not minified and
 * esbuild marks where each source file starts (`// workers/edge/admit.ts`), so a frame's line number
 * names its file. Samples outside JavaScript are the runtime's (`(program)`), and `(garbage collector)`
 * is the collector's; idle samples are not counted.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import WebSocket from "ws";

/** The steps of the request path, in the order a request meets them; the first matching rule wins. */
const STEPS: Array<{ step: string; files: RegExp }> = [
  {
    step: "routing and request checks (request shape, route table, config)",
    files: /^workers\/(edge\/(request-shape|resolve-route|route-table)|config)\.ts$/,
  },
  {
    step: "auth (key parse, hash, isolate cache, authorize)",
    files:
      /^workers\/(edge\/(authenticate|authorize)|shared\/(key-store|api-keys|auth-context|client-ip))\.ts$/,
  },
  {
    step: "admission, client side (input, RPC call, result)",
    files: /^workers\/(edge\/admit|shared\/(tenant-client|idempotency-key))\.ts$/,
  },
  { step: "admission, inside the object (decide + SQLite)", files: /^durable-objects\// },
  { step: "claims signing (HS256 JWT)", files: /^workers\/edge\/claims\.ts$/ },
  {
    step: "proxying (origin request, response, bodies)",
    files: /^workers\/edge\/(proxy|origin|byte-counter|read-body)\.ts$/,
  },
  { step: "rate-limit headers", files: /^workers\/edge\/rate-limit-headers\.ts$/ },
  { step: "request id, timing headers, request log", files: /^workers\/(edge\/request-id|log)\.ts$/ },
  {
    step: "metering hand-off (usage event, request audit, producer)",
    files: /^workers\/(metering\/|edge\/request-audit\.ts$)/,
  },
  { step: "other gateway code", files: /^(workers|durable-objects)\// },
];
/** Work in the same isolate that no request waits for: the queue consumers, cron, the Postgres side. */
const OFF_PATH =
  /^(workers\/(metering\/(consumer|postgres-sink|rollup|reconciliation|stripe-reporter|dead-letters|report-message|usage-queries)|events\/|audit\/|billing\/|retention\/|index\.ts$)|durable-objects\/usage-spool\.ts$)/;
const OFF = "off the request path (queue consumers, cron: Postgres writes)";
const FRAMEWORK = "framework (Hono routing, context, entry)";
const RUNTIME =
  "runtime, outside JavaScript (`(program)` and native calls no gateway code made: I/O, RPC, HTTP)";
const GC = "garbage collection";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}
interface Target {
  title: string;
  webSocketDebuggerUrl: string;
}

export interface ProfileRow {
  step: string;
  /** sampled CPU ms per 1,000 requests */
  msPer1k: number;
  /** of all non-idle samples */
  share: number;
}

export interface ProfileResult {
  requests: number;
  /** Sampled (non-idle) ms per 1k requests, every isolate together. */
  sampledMsPer1k: number;
  rows: ProfileRow[];
  /** Inspector targets profiled, with their share of the samples. */
  targets: Array<{ title: string; ms: number }>;
}

/** Which source file each line of the bundle belongs to (esbuild's `// path` module markers). */
function moduleIndex(bundlePath: string): (line: number) => string {
  const starts: Array<[number, string]> = [];
  readFileSync(bundlePath, "utf8")
    .split("\n")
    .forEach((text, i) => {
      const m = /^\/\/ ((?:workers|durable-objects|schema|node_modules)\/\S+\.[cm]?[jt]sx?)$/.exec(text);
      if (m) starts.push([i, m[1] as string]);
    });
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [start, file] = starts[mid] as [number, string];
      if (start <= line) {
        found = file;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

function stepOfFile(file: string): string | null {
  for (const { step, files } of STEPS) if (files.test(file)) return step;
  return null;
}

/** Profiles every isolate of the workerd behind `inspectorPort` while `load` runs; `load` answers requests completed. */
export async function profileGateway(
  inspectorPort: number,
  bundlePath: string,
  load: () => Promise<number>,
  opts: { samplingIntervalUs?: number; saveDir?: string } = {},
): Promise<ProfileResult> {
  const samplingIntervalUs = opts.samplingIntervalUs ?? 100;
  const list = await fetch(`http://127.0.0.1:${inspectorPort}/json/list`, {
    signal: AbortSignal.timeout(10_000),
  });
  const targets = ((await list.json()) as Target[]).filter((t) => /core:user:gateway/.test(t.title));
  const sessions = await Promise.all(targets.map((t) => openSession(t)));
  try {
    for (const s of sessions) {
      await s.call("Profiler.enable");
      await s.call("Profiler.setSamplingInterval", { interval: samplingIntervalUs });
      await s.call("Profiler.start");
    }
    const requests = await load();
    const profiles = await Promise.all(
      sessions.map(async (s) => (await s.call("Profiler.stop")).profile as CpuProfile),
    );
    // Kept for a closer look: open them in Chrome DevTools (Performance → Load profile).
    if (opts.saveDir) {
      mkdirSync(opts.saveDir, { recursive: true });
      profiles.forEach((p, i) => {
        const name = (targets[i] as Target).title.replace(/^workerd: worker /, "").replace(/[^\w.-]+/g, "_");
        writeFileSync(`${opts.saveDir}/${name}.cpuprofile`, JSON.stringify(p));
      });
    }
    const fileAt = moduleIndex(bundlePath);
    const totals = new Map<string, number>();
    const perTarget: Array<{ title: string; ms: number }> = [];
    profiles.forEach((profile, i) => {
      const ms = charge(profile, fileAt, totals);
      perTarget.push({ title: (targets[i] as Target).title, ms });
    });
    const all = [...totals.values()].reduce((a, b) => a + b, 0);
    const order = [...STEPS.map((s) => s.step), FRAMEWORK, GC, RUNTIME, OFF];
    const rows = order
      .filter((step) => totals.has(step))
      .map((step) => ({
        step,
        msPer1k: ((totals.get(step) ?? 0) / Math.max(1, requests)) * 1000,
        share: (totals.get(step) ?? 0) / all,
      }));
    return { requests, sampledMsPer1k: (all / Math.max(1, requests)) * 1000, rows, targets: perTarget };
  } finally {
    for (const s of sessions) s.close();
  }
}

/** Adds one profile's samples to `totals` (ms per step); answers its non-idle ms. */
function charge(profile: CpuProfile, fileAt: (line: number) => string, totals: Map<string, number>): number {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const fileOf = (id: number) => {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    return frame.url ? fileAt(frame.lineNumber) : "";
  };
  // Whether a node runs under an entry no request waits for (its own file or any caller's).
  const offPath = new Map<number, boolean>();
  const isOff = (id: number): boolean => {
    let off = offPath.get(id);
    if (off === undefined) {
      const up = parent.get(id);
      off = OFF_PATH.test(fileOf(id)) || (up !== undefined && isOff(up));
      offPath.set(id, off);
    }
    return off;
  };
  // The innermost gateway file on the stack; a library frame counts for its caller; a native frame
  // (no script) for its JavaScript caller, or for the runtime when no JavaScript called it.
  const stepOfNode = new Map<number, string>();
  const innermost = (id: number): string => {
    let step = stepOfNode.get(id);
    if (step === undefined) {
      const node = byId.get(id) as ProfileNode;
      const up = parent.get(id);
      const file = fileOf(id);
      const own = file ? stepOfFile(file) : null;
      if (own) step = own;
      else if (up === undefined) step = RUNTIME;
      else {
        const above = innermost(up);
        step = above === RUNTIME && node.callFrame.url ? FRAMEWORK : above;
      }
      stepOfNode.set(id, step);
    }
    return step;
  };
  const classify = (id: number): string | null => {
    const name = (byId.get(id) as ProfileNode).callFrame.functionName;
    if (name === "(idle)") return null;
    if (name === "(program)") return RUNTIME;
    if (name === "(garbage collector)") return GC;
    return isOff(id) ? OFF : innermost(id);
  };
  let ms = 0;
  profile.samples.forEach((id, i) => {
    const step = classify(id);
    if (step === null) return;
    // timeDeltas[i] is the time since the previous sample: the next delta is this sample's duration.
    const us = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    totals.set(step, (totals.get(step) ?? 0) + us / 1000);
    ms += us / 1000;
  });
  return ms;
}

async function openSession(target: Target) {
  // Targets of Durable Object classes are named `service#Class`: the `#` must reach workerd.
  const ws = new WebSocket(target.webSocketDebuggerUrl.replaceAll("#", "%23"), { maxPayload: 1024 ** 3 });
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  let nextId = 1;
  ws.on("message", (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: Record<string, unknown> };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result ?? {});
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return {
    call: (method: string, params: Record<string, unknown> = {}) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
        setTimeout(() => reject(new Error(`${target.title}: ${method} timed out`)), 60_000).unref();
      }),
    close: () => ws.close(),
  };
}
