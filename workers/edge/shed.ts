/**
 * Fair shedding (README "Fair shedding"): when a route's origin degrades, the tenants over their
 * fair share of its concurrency are refused with 503 `origin_overloaded` and `Retry-After`, before
 * admission charges them (not billed, no usage row, the origin not called), while tenants within
 * their share keep being served.
 *
 * What is per isolate, and what is global:
 * - per isolate (this module's state): each route's health (origin-health.ts: baseline and recent
 *   latency, error rate, the adaptive concurrency limit) and each tenant's requests at the route's
 *   origin from this isolate. From these, the tenant's fair share. A tenant already holding its
 *   share here is shed locally, without a tenant-object call (cheap under a flood).
 * - global (the tenant object, durable-objects/concurrency.ts): the tenant's in-flight slots on the
 *   route across isolates. Only while the route is degraded does admission ask for a slot, with the
 *   share as its max (the whole limit while every demand in this isolate fits); the object refuses (`overloaded`) before charging anything, in the same
 *   synchronous decision. The slot is released after the response (a `releaseSlot` call in
 *   waitUntil) or lapses after the origin timeout plus a margin.
 * A healthy route costs a few map reads per request: no slot, no extra object call.
 *
 * The fair share is max-min fair (water-filling) over what each tenant wants here (route-tenants.ts:
 * what it holds, or its typical concurrency if more — so a tenant between its requests keeps room):
 * tenants asking for less than an equal split get all of it, and what they leave is shared by the
 * rest, so the tenant most over its share is the first shed as the limit falls. Every tenant may
 * hold one, and a tenant alone at the route's origin (nobody else holding a request there) is
 * never shed.
 */
import { createMiddleware } from "hono/factory";
import type { SlotRequest } from "../../durable-objects/concurrency";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { log } from "../log";
import { releaseSlot } from "../shared/tenant-client";
import { OriginHealth } from "./origin-health";
import { RouteTenants } from "./route-tenants";

/** `Retry-After` of a shed request, in seconds: a degraded origin is re-judged on every response. */
export const SHED_RETRY_AFTER_S = 1;
/** A slot outlives the origin timeout by this much, so only a lost release lets it lapse. */
const SLOT_LEASE_MARGIN_MS = 5_000;

/** One route's state in this isolate. */
export interface RouteShedState {
  health: OriginHealth;
  /** Who uses this route's origin from this isolate, and how much. */
  tenants: RouteTenants;
}

const routes = new Map<string, RouteShedState>();

/** The isolate's state for a route (by prefix), created on first use. */
export function routeShedState(prefix: string): RouteShedState {
  let state = routes.get(prefix);
  if (!state) {
    state = { health: new OriginHealth(), tenants: new RouteTenants() };
    routes.set(prefix, state);
  }
  return state;
}

/**
 * The most requests one tenant may hold at the origin, when `limit` is shared max-min fairly among
 * tenants wanting `demands` (water-filling): the level L with Σ min(demand, L) = limit, or no cap
 * (Infinity) when every demand fits. Never below 1: every tenant may hold one request.
 */
export function fairShare(limit: number, demands: readonly number[]): number {
  const sorted = [...demands].sort((a, b) => a - b);
  let left = limit;
  for (let i = 0; i < sorted.length; i++) {
    const level = left / (sorted.length - i);
    const demand = sorted[i] as number;
    if (demand > level) return Math.max(1, Math.floor(level));
    left -= demand;
  }
  return Number.POSITIVE_INFINITY;
}

/** The 503 a shed request gets (here, or from admission when the tenant object refuses the slot). */
export function overloaded(route: string, held: number): GatewayError {
  return new GatewayError(
    "origin_overloaded",
    `The origin of ${route} is overloaded and this tenant already has ${held} requests there, its fair share. Retry in ${SHED_RETRY_AFTER_S} s.`,
    { headers: { "retry-after": String(SHED_RETRY_AFTER_S) } },
  );
}

/** Between authorize and admit: sheds, or asks admission for a slot, or (healthy) just counts. */
export const shed = () =>
  createMiddleware<AppEnv>(async function shed(c, next) {
    // `c.get`, not `c.var`: Hono builds a fresh object of every variable on each `c.var` read.
    const config = c.get("config");
    if (!config.shedding) return next();
    const { prefix: route, timeoutMs } = c.get("route");
    const tenantId = c.get("auth").tenant.id;
    const { health, tenants } = routeShedState(route);
    const held = tenants.held(tenantId);
    const now = Date.now();
    // A tenant alone at the route is never shed: there is nobody to be fair to (and an isolate whose
    // own CPU is saturated reads as slow origin answers — the bench's one-tenant runs).
    if (health.degraded(now) && !tenants.alone(tenantId)) {
      const share = fairShare(health.limit, [held + 1, ...tenants.othersDemands(tenantId, now)]);
      if (held >= share) {
        health.noteShed(now);
        throw overloaded(route, held);
      }
      // While every demand here fits, the object still holds the tenant to the whole limit across isolates.
      const slot: SlotRequest = {
        route,
        max: Number.isFinite(share) ? share : Math.max(1, Math.floor(health.limit)),
        leaseMs: (timeoutMs ?? config.originTimeoutMs) + SLOT_LEASE_MARGIN_MS,
      };
      c.set("slot", slot);
    }

    tenants.start(tenantId, now);
    health.begin();
    try {
      await next();
    } finally {
      // The proxy timed the origin only if it called it: a request refused at admission is no sample.
      const rttMs = c.get("timings").origin;
      const end = Date.now();
      tenants.end(tenantId, rttMs ?? 0, end);
      // A downstream error has been answered by onError already (Hono keeps it in `c.error`).
      if (c.error instanceof GatewayError && c.error.code === "origin_overloaded") health.noteShed(end);
      // A failure is a 5xx: the origin's own, or the gateway's 502/504 for it.
      health.end(rttMs === undefined ? null : { rttMs, error: c.res.status >= 500 }, end);
      // Set only when admitted, whatever happened at the origin after.
      const slotId = c.get("admission")?.slotId;
      if (slotId) {
        c.executionCtx.waitUntil(
          releaseSlot(c.env, tenantId, route, slotId).catch((error) =>
            log.error("slot release failed", { request_id: c.get("requestId"), error: String(error) }),
          ),
        );
      }
    }
  });
