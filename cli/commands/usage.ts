/**
 * `gw usage <tenant> [--from --to --granularity hour|day --route]`: a tenant's usage from the admin
 * usage API (`/admin/v1/tenants/:id/usage/timeseries`), one row per hour or day (every bucket of the
 * range, empty ones as zeros, so the trend column reads as a sparkline top to bottom), all routes
 * summed unless `--route` picks one. `--json` prints the API's answer as is.
 */
import { Command, Option } from "commander";
import { contextOf, tenantId } from "../context";
import { time } from "../options";
import { formatTable, sparkline } from "../output";

const HOUR_MS = 3_600_000;
const WIDTH_MS = { hour: HOUR_MS, day: 24 * HOUR_MS } as const;
/** The default range: the last day by the hour, the last 30 days by the day. */
const DEFAULT_SPAN = { hour: 24, day: 30 } as const;

/** One bucket and route, as the API returns it. */
interface Point {
  bucketStart: string;
  route: string;
  requests: number;
  billableRequests: number;
  billableUnits: number;
  bytesIn: number;
  bytesOut: number;
  statuses: Record<string, number>;
}

/** Bytes for people: 1.2 MB. */
function bytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The table: every bucket from `from` to `to`, routes summed, with a sparkline of requests. */
export function usageTable(points: Point[], from: number, to: number, granularity: "hour" | "day"): string {
  const width = WIDTH_MS[granularity];
  const buckets = new Map<
    number,
    { requests: number; billable: number; units: number; errors: number; bytes: number }
  >();
  for (let t = Math.floor(from / width) * width; t < to; t += width)
    buckets.set(t, { requests: 0, billable: 0, units: 0, errors: 0, bytes: 0 });
  for (const p of points) {
    const b = buckets.get(Date.parse(p.bucketStart));
    if (!b) continue;
    b.requests += p.requests;
    b.billable += p.billableRequests;
    b.units += p.billableUnits;
    b.errors += p.statuses["5xx"] ?? 0;
    b.bytes += p.bytesIn + p.bytesOut;
  }
  const entries = [...buckets.entries()];
  const bars = [...sparkline(entries.map(([, b]) => b.requests))];
  const rows = entries.map(([start, b], i) => ({
    [granularity]: new Date(start)
      .toISOString()
      .slice(0, granularity === "hour" ? 13 : 10)
      .replace("T", " "),
    requests: b.requests,
    billable: b.billable,
    units: b.units,
    "5xx": b.errors,
    bytes: bytes(b.bytes),
    trend: bars[i],
  }));
  const total = entries.reduce((sum, [, b]) => sum + b.requests, 0);
  return `${formatTable(rows)}\n\n${total} requests  ${bars.join("")}`;
}

/** The `usage` command. */
export function usageCommand(): Command {
  return new Command("usage")
    .description("a tenant's usage per hour or day, with a sparkline")
    .argument("<tenant>", "tenant id or slug")
    .option("--from <time>", "start (date or ISO time; default: 24 hours or 30 days ago)", time)
    .option("--to <time>", "end, exclusive (default: now)", time)
    .addOption(new Option("--granularity <unit>", "bucket size").choices(["hour", "day"]).default("hour"))
    .option("--route <prefix>", "one route only")
    .action(
      async (
        ref: string,
        flags: { from?: string; to?: string; granularity: "hour" | "day"; route?: string },
        command: Command,
      ) => {
        const { out, client } = contextOf(command);
        const width = WIDTH_MS[flags.granularity];
        // The default end is the end of the current bucket, so the bucket in progress shows.
        const to = flags.to ? Date.parse(flags.to) : Math.ceil((Date.now() + 1) / width) * width;
        const from = flags.from ? Date.parse(flags.from) : to - DEFAULT_SPAN[flags.granularity] * width;
        const id = await tenantId(client, ref);
        const answer = await client.request<{ data: Point[] }>(
          "GET",
          `/admin/v1/tenants/${encodeURIComponent(id)}/usage/timeseries`,
          {
            query: {
              granularity: flags.granularity,
              from: new Date(from).toISOString(),
              to: new Date(to).toISOString(),
              route: flags.route,
            },
          },
        );
        out.data(answer, (a) => usageTable(a.data, from, to, flags.granularity));
      },
    );
}
