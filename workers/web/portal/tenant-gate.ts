/**
 * What a tenant's status lets its portal change, by the tenant API door's rules
 * (workers/api/tenant/door.ts): reading and revoking keys always; creating, rotating or editing keys
 * and buying credits not while suspended (403) nor once a past-due tenant's grace period has ended
 * (402). A past-due tenant within its grace passes, as its API requests do. Decided from the tenant
 * row the page has just read from Postgres, the source the edge's copies are projected from.
 */
import { withinGrace } from "../../../durable-objects/admission";
import type { Tenant } from "../../../schema";
import { paymentRequired, suspended } from "../../edge/authorize";
import type { GatewayError } from "../../errors";

/** The refusal a change by `tenant` gets at `now`, or null when it may go ahead. */
export function changeRefusal(tenant: Tenant, now: number): GatewayError | null {
  if (tenant.status === "suspended") return suspended();
  if (tenant.status !== "past_due") return null;
  const graceUntil = tenant.graceUntil?.getTime() ?? null;
  if (withinGrace(graceUntil, now)) return null;
  return paymentRequired({ since: tenant.pastDueSince?.getTime() ?? null, graceUntil });
}
