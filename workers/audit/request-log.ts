/**
 * The request audit log's writer (`audit.requests`), called by the usage pipeline inside the
 * transaction that stores a batch (workers/metering/postgres-sink.ts): every authenticated request
 * the batch carries becomes one entry of its tenant's `request` chain, in arrival order (time, then
 * request id), and a request already in the log (a redelivered batch) is skipped, so each request is
 * logged exactly once and commits or rolls back with its usage row.
 */
import type { Db, Tx } from "../shared/db";
import { appendToChains, unrecordedRequests } from "./append";
import type { RequestContent } from "./chain";

/** What the log keeps of a request: the fields a usage event and an unmetered-request record share. */
export interface LoggedRequest {
  /** The request id. */
  id: string;
  tenantId: string;
  keyId: string;
  method: string;
  route: string;
  status: number;
  /** ISO 8601 arrival time. */
  ts: string;
  clientIp?: string;
  userAgent?: string;
}

/** The chain entry of a request: its tenant's chain. */
export function requestEntry(r: LoggedRequest): RequestContent {
  return {
    chain: r.tenantId,
    requestId: r.id,
    occurredAt: new Date(r.ts).toISOString(),
    keyId: r.keyId,
    method: r.method,
    route: r.route,
    status: r.status,
    clientIp: r.clientIp ?? null,
    userAgent: r.userAgent ?? null,
  };
}

const byArrival = (a: RequestContent, b: RequestContent) =>
  a.occurredAt < b.occurredAt ? -1 : a.occurredAt > b.occurredAt ? 1 : a.requestId < b.requestId ? -1 : 1;

/**
 * Appends `requests` not yet logged to their tenants' chains (a tenant's in time, then id order);
 * returns how many were appended. Locks each chain's head until the caller's transaction ends.
 */
export async function logRequests(tx: Db | Tx, requests: readonly LoggedRequest[]): Promise<number> {
  if (requests.length === 0) return 0;
  const fresh = await unrecordedRequests(tx, requests.map(requestEntry).sort(byArrival));
  await appendToChains(tx, "request", fresh);
  return fresh.length;
}
