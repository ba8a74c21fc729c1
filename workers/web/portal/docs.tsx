/**
 * `GET /portal/docs`: the API reference a tenant's developers read — first the provider's own API
 * (the OpenAPI document at `PORTAL_OPENAPI_URL`, fetched and cached by workers/web/reference/
 * operator-document.ts; unset or unusable → a Notice, never an error page), then the gateway's
 * tenant API (only the `Tenant API` operations of the gateway's own document: never an admin one).
 * Every operation has a curl command and a "try it" form for a test key (`/_static/try-it.js`),
 * sent to this origin: the provider's API is served here, through the gateway.
 */
import type { Hono } from "hono";
import { gatewayDocument } from "../../api/openapi";
import type { AppEnv } from "../../env";
import { Notice } from "../layout";
import { operatorReference } from "../reference/operator-document";
import { REFERENCE_STYLES, Reference, TRY_IT_SCRIPTS } from "../reference/reference";
import { buildReference } from "../reference/view-model";
import { portalTenant } from "./context";
import { portalPage } from "./portal-page";

/** The tag of the gateway's operations a tenant's key may call. */
const TENANT_TAG = "Tenant API";

export function registerPortalDocs(portal: Hono<AppEnv>): void {
  portal.get("/docs", async (c) => {
    const [{ tenant }, operator] = await Promise.all([
      portalTenant(c),
      c.var.config.portalOpenapiUrl ? operatorReference(c.var.config.portalOpenapiUrl) : undefined,
    ]);
    const baseUrl = new URL(c.req.url).origin;
    // Ids of both references share one page; the provider's come first, as on the page.
    const ids = new Set<string>();
    if (operator?.ok)
      for (const group of operator.view.groups) for (const op of group.operations) ids.add(op.id);
    const tenantApi = buildReference(gatewayDocument(), { tags: [TENANT_TAG], idsTaken: ids });

    return portalPage(
      c,
      {
        title: "Docs",
        current: "/portal/docs",
        who: tenant.name,
        scripts: TRY_IT_SCRIPTS,
        styles: REFERENCE_STYLES,
      },
      <>
        <p>
          Every request goes to <code>{baseUrl}</code> with your API key in{" "}
          <code>Authorization: Bearer …</code>. Test keys (<code>gw_test_…</code>) reach the sandbox and are
          never billed; "Try it" takes only a test key.
        </p>
        <section aria-labelledby="provider-api">
          <h2 id="provider-api" class="section-title">
            Your provider's API
          </h2>
          {operator === undefined && (
            <Notice kind="ok">Your API provider hasn't published a reference here yet.</Notice>
          )}
          {operator && !operator.ok && <Notice kind="error">{operator.reason}</Notice>}
          {operator?.ok && <Reference view={operator.view} baseUrl={baseUrl} tryIt />}
        </section>
        <section aria-labelledby="gateway-api">
          <h2 id="gateway-api" class="section-title">
            Gateway API: your usage, keys and billing
          </h2>
          <Reference view={{ ...tenantApi, title: "Tenant API" }} baseUrl={baseUrl} tryIt />
        </section>
      </>,
    );
  });
}
