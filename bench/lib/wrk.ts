/**
 * wrk runs: always bounded by `-d` (and killed if it overstays), a fixed thread and connection
 * count, and a Lua `done` hook that prints the summary as one JSON line, p99.9 included (wrk's own
 * `--latency` table stops at p99). With `countStatuses`, a `response` hook also counts every status
 * (wrk then parses each response in Lua: slower, so only for the correctness runs).
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";

export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  /** socket errors (connect+read+write+timeout) + non-2xx/3xx responses */
  errorTotal: number;
  latencyMs: { mean: number; p50: number; p75: number; p90: number; p99: number; p999: number; max: number };
  statuses?: Record<string, number>;
}

const DONE = `
function done(summary, latency, requests)
  local e = summary.errors
  local statuses = "null"
  if threads ~= nil then
    local agg = {}
    for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s ~= nil then
        for k, v in pairs(s) do agg[k] = (agg[k] or 0) + v end
      end
    end
    local parts = {}
    for k, v in pairs(agg) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
    statuses = "{" .. table.concat(parts, ",") .. "}"
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},"statuses":%s}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), statuses))
end
`;

const COUNT = `
threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
`;

/** Writes the two Lua scripts into `dir`; returns their paths. */
export function writeLuaScripts(dir: string): { report: string; count: string } {
  const report = `${dir}/report.lua`;
  const count = `${dir}/count-statuses.lua`;
  writeFileSync(report, DONE);
  writeFileSync(count, COUNT + DONE);
  return { report, count };
}

export async function runWrk(opts: {
  url: string;
  threads: number;
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
  script: string;
}): Promise<WrkResult> {
  const args = [
    `-t${Math.min(opts.threads, opts.connections)}`, // wrk needs connections >= threads
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    "--timeout",
    "5s",
    "-s",
    opts.script,
  ];
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push("-H", `${name}: ${value}`);
  args.push(opts.url);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    // -d bounds it; this only guards against a wrk that hangs on exit.
    const timer = setTimeout(() => child.kill("SIGKILL"), (opts.durationS + 20) * 1000);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`wrk exited ${code}: ${out.slice(-1000)}`));
    });
  });
  const line = output.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (!line) throw new Error(`wrk printed no summary:\n${output.slice(-1000)}`);
  const raw = JSON.parse(line.slice("BENCH_JSON ".length)) as {
    requests: number;
    duration_us: number;
    bytes: number;
    errors: WrkResult["errors"];
    latency_us: Record<keyof WrkResult["latencyMs"], number>;
    statuses: Record<string, number> | null;
  };
  const durationS = raw.duration_us / 1e6;
  const e = raw.errors;
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    requests: raw.requests,
    durationS,
    rps: raw.requests / durationS,
    bytes: raw.bytes,
    errors: e,
    errorTotal: e.connect + e.read + e.write + e.timeout + e.status,
    latencyMs: {
      mean: ms(raw.latency_us.mean),
      p50: ms(raw.latency_us.p50),
      p75: ms(raw.latency_us.p75),
      p90: ms(raw.latency_us.p90),
      p99: ms(raw.latency_us.p99),
      p999: ms(raw.latency_us.p999),
      max: ms(raw.latency_us.max),
    },
    ...(raw.statuses ? { statuses: raw.statuses } : {}),
  };
}
