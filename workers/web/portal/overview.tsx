/** `GET /portal`: the tenant's overview. */
import type { Hono } from "hono";
import type { AppEnv } from "../../env";
import { portalTenant } from "./context";
import { portalPage } from "./portal-page";

export function registerPortalOverview(portal: Hono<AppEnv>): void {
  portal.get("/", async (c) => {
    const { tenant, plan } = await portalTenant(c);
    return portalPage(
      c,
      { title: "Overview", current: "/portal", who: tenant.name },
      <dl class="facts">
        <dt>Tenant</dt>
        <dd>{tenant.name}</dd>
        <dt>Plan</dt>
        <dd>{plan.name}</dd>
        <dt>Status</dt>
        <dd>{tenant.status}</dd>
      </dl>,
    );
  });
}
