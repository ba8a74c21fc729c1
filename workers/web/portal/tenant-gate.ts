/**
 * What a tenant's status lets its portal change, by the tenant API door's rules
 * (workers/api/tenant/door.ts): reading and revoking keys always; creating, rotating or editing keys
 * and buying credits not while suspended (403) nor once a past-due tenant's grace period has ended
 * (402). A past-due tenant within its grace passes, as its API requests do. Decided from the tenant
 * row the page has just read from Postgres, the source the edge's copies are projected from.
 */
import type { Tenant } from "../../../schema";
import { statusRefusal } from "../../edge/authorize";
import type { GatewayError } from "../../errors";

/** The refusal a change by `tenant` gets at `now`, or null when it may go ahead. */
export function changeRefusal(tenant: Tenant, now: number): GatewayError | null {
  return statusRefusal(
    {
      status: tenant.status,
      pastDueSince: tenant.pastDueSince?.getTime() ?? null,
      graceUntil: tenant.graceUntil?.getTime() ?? null,
    },
    now,
  );
}
