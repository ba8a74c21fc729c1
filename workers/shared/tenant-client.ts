/**
 * The Worker's side of the tenant Durable Object: typed calls, one retry on errors the runtime
 * marks retryable (except for `admit`), and mapping of failures to a 503. Counts calls so tests and the benchmark can
 * check the budget: one `admit` per request through a tenant door — the proxy (+1 `complete` when
 * an Idempotency-Key response is recorded or released) or the tenant API (whose usage endpoint
 * reads from that same call) — none for requests rejected before admission; +1 `releaseCredits`
 * only when a prepaid request that held credits turns out not billable; +1 `releaseSlot` only for a
 * request admitted while its route's origin was degraded (fair shedding). A leased plan's live traffic
 * makes one `lease` per isolate and lease lifetime instead (+1 `returnLeases` when its traffic stops).
 */
import type { RecordedResponse } from "../../durable-objects/idempotency";
import type { KeyState, TenantConfig } from "../../durable-objects/limits";
import type {
  AdmitInput,
  AdmitResult,
  CreditBalance,
  CreditGrant,
  CreditHour,
  CurrentUsage,
  GrantResult,
  LeaseInput,
  LeaseReport,
  LeaseResult,
  ReconciliationHours,
  TenantLimiter,
} from "../../durable-objects/tenant";
import type { Bindings } from "../env";
import { GatewayError } from "../errors";
import { log } from "../log";
import type { TenantRecord } from "./auth-context";

/** Durable Object calls made by this isolate. */
export const doCalls = { count: 0 };

type TenantEnv = Pick<Bindings, "TENANT">;
type Stub = DurableObjectStub<TenantLimiter>;

function isRetryable(error: unknown): boolean {
  const e = error as { retryable?: boolean; overloaded?: boolean } | undefined;
  return e?.retryable === true && e.overloaded !== true;
}

function unavailable(error: unknown, tenantId: string): GatewayError {
  log.error("tenant object call failed", { tenant_id: tenantId, error: String(error) });
  return new GatewayError("service_unavailable", "Admission is temporarily unavailable. Retry shortly.", {
    headers: { "retry-after": "1" },
  });
}

/**
 * One call, retried once on a retryable error when `retry` allows it. `admit` does not: a
 * retryable error may come after the object already charged the request, and a retry would charge
 * it twice — exactness comes first, the client gets a 503 with `Retry-After: 1` instead.
 */
async function call<T>(
  env: TenantEnv,
  tenantId: string,
  fn: (stub: Stub) => Promise<T>,
  retry = true,
): Promise<T> {
  doCalls.count++;
  // A stub that has thrown is broken: the retry needs a fresh one. (Stubs are not kept across
  // requests: like every I/O object, a stub belongs to the request that made it.)
  try {
    return await fn(env.TENANT.getByName(tenantId));
  } catch (error) {
    if (!retry || !isRetryable(error)) throw unavailable(error, tenantId);
    try {
      return await fn(env.TENANT.getByName(tenantId));
    } catch (again) {
      throw unavailable(again, tenantId);
    }
  }
}

/** Built once per tenant record: the isolate cache hands the same record to every request. */
const configs = new WeakMap<TenantRecord, TenantConfig>();

/** The tenant's limit config as the edge knows it (from KV). */
export function tenantConfig(tenant: TenantRecord): TenantConfig {
  let config = configs.get(tenant);
  if (!config) {
    config = buildConfig(tenant);
    configs.set(tenant, config);
  }
  return config;
}

function buildConfig(tenant: TenantRecord): TenantConfig {
  return {
    version: tenant.version,
    status: tenant.status,
    pastDueSince: tenant.pastDueSince,
    graceUntil: tenant.graceUntil,
    limits: tenant.limits,
    ...(tenant.sandbox ? { sandbox: tenant.sandbox } : {}),
    ...(tenant.credits ? { credits: true } : {}),
    ...(tenant.admissionMode === "leased" ? { admissionMode: "leased" as const } : {}),
  };
}

/** What `admit` answers its callers: a `config_needed` is handled here. */
export type Admission = Exclude<AdmitResult, { outcome: "config_needed" }>;

/**
 * Per tenant, the newest config version its object is known to hold (it answered a call that
 * carried or required it). Bounded: cleared when it grows past MAX_KNOWN_CONFIGS tenants.
 */
const knownConfigs = new Map<string, number>();
const MAX_KNOWN_CONFIGS = 10_000;

/**
 * The admission call. The tenant's config rides along only while the object may not hold its version
 * yet (the first call from this isolate, or after a tenant change): the smaller call is most of what
 * this isolate sends per request. If the object turns out to hold an older one (`config_needed`,
 * nothing decided), the call is made again with it.
 */
export async function admit(
  env: TenantEnv,
  tenantId: string,
  input: AdmitInput & { config: TenantConfig },
): Promise<Admission> {
  const { config, ...rest } = input;
  const lean = (knownConfigs.get(tenantId) ?? -1) >= config.version;
  let result = await call(
    env,
    tenantId,
    async (stub) =>
      (await stub.admit(lean ? { ...rest, configVersion: config.version } : input)) as AdmitResult,
    false,
  );
  if (result.outcome === "config_needed") {
    result = await call(env, tenantId, async (stub) => (await stub.admit(input)) as AdmitResult, false);
    if (result.outcome === "config_needed") throw unavailable("config refused twice", tenantId);
  }
  if (knownConfigs.size >= MAX_KNOWN_CONFIGS) knownConfigs.clear();
  if ((knownConfigs.get(tenantId) ?? -1) < config.version) knownConfigs.set(tenantId, config.version);
  return result;
}

/** Lease mode (workers/edge/lease-pool.ts): settles the holder's finished leases and asks for a new one. Not retried, like `admit`. */
export function lease(env: TenantEnv, tenantId: string, input: LeaseInput): Promise<LeaseResult> {
  return call(env, tenantId, async (stub) => (await stub.lease(input)) as LeaseResult, false);
}

/** Lease mode: gives back leases the holder no longer admits from. A retry cannot count one twice. */
export function returnLeases(
  env: TenantEnv,
  tenantId: string,
  holder: string,
  reports: LeaseReport[],
): Promise<void> {
  return call(env, tenantId, async (stub) => {
    await stub.returnLeases(holder, reports);
  });
}

export function complete(
  env: TenantEnv,
  tenantId: string,
  key: string,
  leaseToken: string,
  response: RecordedResponse | null,
): Promise<void> {
  return call(env, tenantId, async (stub) => {
    await stub.complete(key, leaseToken, response);
  });
}

/** Admin side: pushes a tenant change so the next request sees it. */
export function configure(env: TenantEnv, tenantId: string, config: TenantConfig): Promise<void> {
  return call(env, tenantId, async (stub) => {
    await stub.configure(config);
  });
}

/**
 * Admin side: what the object knows of a key (expiry, revocation, IP allowlist, per-key limit),
 * so every change applies on the next request everywhere, whatever KV and isolate caches hold.
 */
export function putKey(env: TenantEnv, tenantId: string, keyId: string, state: KeyState): Promise<void> {
  return call(env, tenantId, async (stub) => {
    await stub.putKey(keyId, state);
  });
}

/**
 * Reconciliation, in one call: the hours of admitted requests the tenant object counted, and the
 * leases that lapsed unreported per hour of grant (what the ledger misses).
 */
export function reconciliationHours(
  env: TenantEnv,
  tenantId: string,
  from: number,
  to: number,
): Promise<ReconciliationHours> {
  return call(
    env,
    tenantId,
    async (stub) => (await stub.reconciliationHours(from, to)) as ReconciliationHours,
  );
}

/** The admin usage API: the current period in every window, charging nothing. */
export function peek(
  env: TenantEnv,
  tenantId: string,
  config: TenantConfig,
  keyEnv: "live" | "test" = "live",
): Promise<CurrentUsage> {
  return call(env, tenantId, async (stub) => (await stub.peek(config, keyEnv)) as CurrentUsage);
}

/** The proxy, when an admitted request turns out not billable: gives its held credits back. */
export function releaseCredits(env: TenantEnv, tenantId: string, holdId: string): Promise<boolean> {
  return call(env, tenantId, async (stub) => (await stub.releaseCredits(holdId)) as boolean);
}

/** Fair shedding: ends the in-flight slot a request on a degraded route held, after its response. */
export function releaseSlot(
  env: TenantEnv,
  tenantId: string,
  route: string,
  slotId: string,
): Promise<boolean> {
  return call(env, tenantId, async (stub) => (await stub.releaseSlot(route, slotId)) as boolean);
}

/** Adds (or debits) credits once per grant id; the id is the Postgres ledger row's. */
export function grantCredits(env: TenantEnv, tenantId: string, grant: CreditGrant): Promise<GrantResult> {
  return call(env, tenantId, async (stub) => (await stub.grantCredits(grant)) as GrantResult);
}

/** The tenant's credit balance and what recent requests hold of it. */
export function creditBalance(env: TenantEnv, tenantId: string): Promise<CreditBalance> {
  return call(env, tenantId, async (stub) => (await stub.creditBalance()) as CreditBalance);
}

/** Reconciliation: credits the tenant object granted and spent per hour in [from, to). */
export function creditHours(
  env: TenantEnv,
  tenantId: string,
  from: number,
  to: number,
): Promise<CreditHour[]> {
  return call(env, tenantId, async (stub) => (await stub.creditHours(from, to)) as CreditHour[]);
}
