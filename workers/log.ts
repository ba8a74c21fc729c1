/**
 * The one logger. Every line is a JSON object with a level, a message and fields from one fixed
 * vocabulary (below), so a log search for `request_id` or `tenant_id` finds every line about a
 * request or tenant, whichever module wrote it. Workers Logs indexes these fields as they are.
 *
 * The level is set once per isolate from the `LOG_LEVEL` var (workers/config.ts); lines below it
 * are dropped before they are serialised. `LOG_SAMPLE_RATE` keeps a share of the `ok` request lines
 * (workers/edge/request-id.ts asks `sampled()`); lines about errors are always written.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** The fixed field names. Modules may add their own fields, but never a synonym of these. */
export interface LogFields {
  request_id?: string;
  tenant_id?: string;
  key_id?: string;
  route?: string;
  method?: string;
  status?: number;
  /** The problem code of a gateway error, or `ok`. */
  code?: string;
  latency_ms?: number;
  origin_ms?: number;
  bytes_in?: number;
  bytes_out?: number;
  /** A caught error, stringified (never a raw key or a request body). */
  error?: string;
  [field: string]: unknown;
}

let threshold = ORDER.info;
let sampleRate = 1;

/** Sets the lowest level written by this isolate. */
export function setLogLevel(level: LogLevel): void {
  threshold = ORDER[level];
}

/** Sets the share (0..1) of sampled lines written by this isolate. */
export function setLogSampleRate(rate: number): void {
  sampleRate = rate;
}

/** Whether a sampled line (an `ok` request line) is written this time. */
export function sampled(): boolean {
  return sampleRate >= 1 || (sampleRate > 0 && Math.random() < sampleRate);
}

function write(level: LogLevel, msg: string, fields: LogFields): void {
  if (ORDER[level] < threshold) return;
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export const log = {
  debug: (msg: string, fields: LogFields = {}) => write("debug", msg, fields),
  info: (msg: string, fields: LogFields = {}) => write("info", msg, fields),
  warn: (msg: string, fields: LogFields = {}) => write("warn", msg, fields),
  error: (msg: string, fields: LogFields = {}) => write("error", msg, fields),
};
