/**
 * The Stripe stand-in's wire kit (dev/stripe-standin.ts and its parts under dev/stripe/): form
 * parameters, Stripe's error envelope, list pagination and object ids.
 */
import { randomBytes } from "node:crypto";
import type { Account } from "./objects";

export type Params = { [key: string]: Param };
export type Param = string | Params;

/** An error answered in Stripe's envelope. */
export class StripeFault extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: { code?: string; param?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
}

export const invalid = (message: string, extra: { code?: string; param?: string; status?: number } = {}) =>
  new StripeFault(extra.status ?? 400, "invalid_request_error", message, extra);
export const missing = (param: string) =>
  invalid(`Missing required param: ${param}.`, { code: "parameter_missing", param });

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Call {
  method: string;
  path: string;
  params: Params;
  account: Account;
  livemode: boolean;
  requestId: string;
  /** The request's Idempotency-Key (POST only), for the events it causes. */
  idempotencyKey?: string;
  nowS: number;
}

// Choice: the version the `stripe` package in this repo pins, answered when a request names none.
export const DEFAULT_STRIPE_VERSION = "2026-10-28.endive";

export function allowOnly(params: Params, allowed: string[], prefix?: string): void {
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key)) {
      const name = prefix ? `${prefix}[${key}]` : key;
      throw invalid(`Received unknown parameter: ${name}`, { code: "parameter_unknown", param: name });
    }
  }
}

export function optString(params: Params, key: string, name = key): string | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string")
    throw invalid(`Invalid string: ${name} must be a string, not a hash.`, { param: name });
  return value;
}

export function reqString(params: Params, key: string, name = key): string {
  const value = optString(params, key, name);
  if (value === undefined || value === "") throw missing(name);
  return value;
}

export function hash(params: Params, key: string): Params | undefined {
  const value = params[key];
  if (value === undefined || value === "") return undefined;
  if (typeof value === "string") throw invalid(`Invalid object: ${key} must be a hash.`, { param: key });
  return value;
}

export function integer(raw: string, param: string): number {
  if (!/^-?\d+$/.test(raw.trim()))
    throw invalid(`Invalid integer: ${raw}`, { code: "parameter_invalid_integer", param });
  const n = Number(raw);
  if (!Number.isSafeInteger(n))
    throw invalid(`Invalid integer: ${raw}`, { code: "parameter_invalid_integer", param });
  return n;
}

/** The `expand[]` paths of a request. */
export function expansions(params: Params): Set<string> {
  return new Set(list(params, "expand") ?? []);
}

/** An array parameter (`a[0]=x&a[1]=y` or `a[]=x`), as strings. */
export function list(params: Params, key: string): string[] | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (typeof value === "string") throw invalid(`Invalid array: ${key} must be an array.`, { param: key });
  return Object.entries(value).map(([i, v]) => {
    if (typeof v !== "string")
      throw invalid(`Invalid string: ${key}[${i}] must be a string.`, { param: `${key}[${i}]` });
    return v;
  });
}

export function nonNegative(raw: string, param: string): number {
  const n = integer(raw, param);
  if (n < 0) throw invalid(`Invalid ${param}: must be greater than or equal to 0`, { param });
  return n;
}

export function metadataOf(params: Params): Record<string, string> {
  const raw = hash(params, "metadata");
  const metadata: Record<string, string> = {};
  if (!raw) return metadata;
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string")
      throw invalid(`Invalid string: metadata[${k}] must be a string.`, { param: `metadata[${k}]` });
    if (k.length > 40)
      throw invalid("Metadata keys can be at most 40 characters.", { param: `metadata[${k}]` });
    if (v.length > 500)
      throw invalid("Metadata values can be at most 500 characters.", { param: `metadata[${k}]` });
    if (v !== "") metadata[k] = v; // an empty value unsets a key
  }
  if (Object.keys(metadata).length > 50)
    throw invalid("Metadata can have at most 50 keys.", { param: "metadata" });
  return metadata;
}

/**
 * Stripe's "No such customer: 'cus_…'" (`resource_missing`): 404 for the object in the path, 400 for
 * one named by a parameter. Choice: "billing meter" as the meter's name in the message, and the
 * "a similar object exists in live mode" hint is not modelled.
 */
export function noSuch(what: string, id: string, param: string, status: number): StripeFault {
  return invalid(`No such ${what}: '${id}'`, { code: "resource_missing", param, status });
}

export function paginate<T extends { id: string }>(
  items: T[],
  params: Params,
  url: string,
): { object: "list"; data: T[]; has_more: boolean; url: string } {
  const limitRaw = optString(params, "limit");
  const limit = limitRaw === undefined ? 10 : integer(limitRaw, "limit");
  if (limit < 1 || limit > 100)
    throw invalid("Invalid limit: must be between 1 and 100.", { param: "limit" });
  const after = optString(params, "starting_after");
  const before = optString(params, "ending_before");
  if (after && before) {
    throw invalid("You may only specify one of these parameters: ending_before, starting_after.", {
      param: "starting_after",
    });
  }
  let data: T[];
  let hasMore: boolean;
  if (before) {
    const i = items.findIndex((item) => item.id === before);
    if (i < 0)
      throw invalid(`No such object: '${before}'`, { code: "resource_missing", param: "ending_before" });
    const from = Math.max(0, i - limit);
    data = items.slice(from, i);
    hasMore = from > 0;
  } else {
    const i = after ? items.findIndex((item) => item.id === after) : -1;
    if (after && i < 0)
      throw invalid(`No such object: '${after}'`, { code: "resource_missing", param: "starting_after" });
    data = items.slice(i + 1, i + 1 + limit);
    hasMore = i + 1 + limit < items.length;
  }
  return { object: "list", data, has_more: hasMore, url };
}

export const ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export function randomChars(n: number): string {
  const bytes = randomBytes(n);
  let out = "";
  for (const b of bytes) out += ALPHANUMERIC[b % ALPHANUMERIC.length];
  return out;
}
export const newId = (prefix: string, n: number) => `${prefix}_${randomChars(n)}`;
