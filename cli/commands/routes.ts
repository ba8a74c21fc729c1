/**
 * `gw routes shadow <prefix>`: how a route's shadow origin compares with its primary
 * (`GET /admin/v1/routes/:prefix/shadow`): counts, match rate, average latencies and their delta over
 * the last `--hours` or `--from`/`--to`, then the newest mismatches and what differed in each.
 */
import { Command } from "commander";
import type { z } from "zod";
import type { ShadowReportSchema } from "../../workers/api/admin/shadow";
import { contextOf } from "../context";
import { integer, time } from "../options";
import { formatRecord, formatTable } from "../output";

type Report = z.infer<typeof ShadowReportSchema>;
type Mismatch = Report["mismatches"][number];

/** What differed, in one cell: `status 200→503`, `body`, `x-variant a→b`. */
export function differences(diff: Mismatch["diff"]): string {
  const parts: string[] = [];
  if (diff.status) parts.push(`status ${diff.status.primary}→${diff.status.shadow}`);
  if (diff.body) parts.push("body");
  for (const [name, [primary, shadow]] of Object.entries(diff.headers ?? {}))
    parts.push(`${name} ${primary ?? "(none)"}→${shadow ?? "(none)"}`);
  return parts.join(", ");
}

function render(r: Report): string {
  const percent = (rate: number | null) => (rate === null ? null : `${(rate * 100).toFixed(1)} %`);
  const ms = (v: number | null) => (v === null ? null : `${v} ms`);
  const summary = formatRecord({
    route: r.route,
    shadow: r.shadow
      ? `${r.shadow.origin} (${r.shadow.sampleRate * 100} % of ${r.shadow.methods.join(", ")})`
      : "none",
    range: `${r.from} → ${r.to}`,
    compared: r.compared,
    matched: r.matched,
    mismatched: r.mismatched,
    failed: r.failed,
    "match rate": percent(r.matchRate),
    "latency primary": ms(r.latency.primaryAvgMs),
    "latency shadow": ms(r.latency.shadowAvgMs),
    "latency delta": ms(r.latency.deltaMs),
  });
  if (r.mismatches.length === 0) return summary;
  const rows = r.mismatches.map((m) => ({
    at: m.at,
    request: m.requestId,
    method: m.method,
    path: m.path,
    differs: differences(m.diff),
    primary_ms: m.primaryLatencyMs,
    shadow_ms: m.shadowLatencyMs,
  }));
  return `${summary}\n\n${formatTable(rows)}`;
}

/** The `routes` command group. */
export function routesCommand(): Command {
  const routes = new Command("routes").description("the route table's routes: shadow traffic");
  routes
    .command("shadow")
    .description("how a route's shadow origin compares with its primary: match rate, latency, mismatches")
    .argument("<prefix>", "route prefix, e.g. /v1/reports/")
    .option("--hours <n>", "the last N hours (default 24)", integer)
    .option("--from <time>", "start (a date like 2026-11-01, or an ISO time), with --to", time)
    .option("--to <time>", "end, exclusive", time)
    .option("--samples <n>", "mismatches listed, newest first (0-100, default 20)", integer)
    .action(
      async (
        prefix: string,
        flags: { hours?: number; from?: string; to?: string; samples?: number },
        command: Command,
      ) => {
        const { out, client } = contextOf(command);
        const report = await client.request<Report>(
          "GET",
          `/admin/v1/routes/${encodeURIComponent(prefix)}/shadow`,
          { query: { hours: flags.hours, from: flags.from, to: flags.to, samples: flags.samples } },
        );
        out.data(report, render);
      },
    );
  return routes;
}
