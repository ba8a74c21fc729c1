/**
 * Builds the Hono app: global middleware in request order, the gateway's own endpoints, then the
 * proxy catch-all. `onError` is the only place errors become responses (problem+json).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { registerAdminAudit } from "./api/admin/audit";
import { registerAdminBillingReport } from "./api/admin/billing-report";
import { registerAdminCredits } from "./api/admin/credits";
import { registerAdminKeys } from "./api/admin/keys";
import { registerAdminPlans } from "./api/admin/plans";
import { registerAdminPortalSessions } from "./api/admin/portal-sessions";
import { registerAdminReconciliation } from "./api/admin/reconciliation";
import { registerAdminShadow } from "./api/admin/shadow";
import { registerAdminTenants } from "./api/admin/tenants";
import { registerAdminWebhooks } from "./api/admin/webhooks";
import { adminAuth } from "./api/admin-auth";
import { registerBilling } from "./api/billing";
import { database } from "./api/database";
import { registerHealth } from "./api/health";
import { registerMethodNotAllowed } from "./api/method-not-allowed";
import { registerOpenApi } from "./api/openapi";
import { registerGatewayAudit } from "./api/tenant/audit";
import { registerGatewayCredits } from "./api/tenant/credits";
import { tenantDoor } from "./api/tenant/door";
import { registerGatewayKeys } from "./api/tenant/keys";
import { registerGatewayWebhooks } from "./api/tenant/webhooks";
import { registerUsage } from "./api/usage";
import { auditTrail } from "./audit/record";
import { registerStripeWebhooks } from "./billing/webhooks/receive";
import { config } from "./config";
import { authenticate } from "./edge/authenticate";
import { registerProxy } from "./edge/proxy";
import { requestAudit } from "./edge/request-audit";
import { requestId } from "./edge/request-id";
import type { AppEnv } from "./env";
import { type ErrorCode, GatewayError, problemResponse } from "./errors";
import { log } from "./log";
import { newId } from "./shared/ids";
import { registerConsole } from "./web/console";
import { errorPage, wantsErrorPage } from "./web/error-page";
import { registerPortal } from "./web/portal";

/** Admin and tenant API bodies are small JSON documents. */
const API_BODY_LIMIT = 64 * 1024;

const HTTP_EXCEPTION_CODES: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
};

function toGatewayError(error: unknown): GatewayError | undefined {
  if (error instanceof GatewayError) return error;
  if (error instanceof HTTPException) {
    const code = HTTP_EXCEPTION_CODES[error.status];
    if (code) return new GatewayError(code, error.message || "The request could not be processed.");
  }
  return undefined;
}

export function createApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new GatewayError("validation_failed", "The request is invalid.", {
          errors: result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
        });
      }
    },
  });

  app.use("*", requestId(), config());
  registerHealth(app);

  const apiBodyLimit = bodyLimit({
    maxSize: API_BODY_LIMIT,
    onError: () => {
      throw new GatewayError("payload_too_large", `Request bodies are limited to ${API_BODY_LIMIT} bytes.`);
    },
  });
  // Every change is recorded in the audit trail once answered (workers/audit/record.ts).
  app.use("/admin/*", adminAuth(), apiBodyLimit, database(), auditTrail("admin"));
  registerAdminPlans(app);
  registerAdminTenants(app);
  registerAdminKeys(app);
  registerAdminReconciliation(app);
  registerAdminBillingReport(app);
  registerAdminCredits(app);
  registerAdminPortalSessions(app);
  registerAdminWebhooks(app);
  registerAdminAudit(app);
  registerAdminShadow(app);

  // Every tenant API call the key gets through authentication for is in the request audit log.
  app.use(
    "/gateway/v1/*",
    authenticate(),
    requestAudit(),
    tenantDoor(),
    apiBodyLimit,
    database(),
    auditTrail("tenant"),
  );
  registerGatewayKeys(app);
  registerGatewayWebhooks(app);
  registerUsage(app);
  registerBilling(app);
  registerGatewayCredits(app);
  registerGatewayAudit(app);

  // Stripe's signature is this door's only credential (workers/billing/webhooks/receive.ts).
  registerStripeWebhooks(app);

  // The web faces: server-rendered pages behind session cookies (workers/web/).
  registerPortal(app, apiBodyLimit);
  registerConsole(app, apiBodyLimit);

  registerOpenApi(app);
  // Wrong method on a gateway path → 405 with Allow, not the proxy's 404 (workers/api/method-not-allowed.ts).
  registerMethodNotAllowed(app);

  registerProxy(app);

  app.onError((error, c) => {
    const id = c.get("requestId") ?? newId("req");
    const known = toGatewayError(error);
    // The request log line (workers/edge/request-id.ts) reports this code.
    c.set("problemCode", known?.code ?? "internal");
    if (known) return wantsErrorPage(c) ? errorPage(c, known, id) : problemResponse(known, id);
    log.error("unhandled error", { request_id: id, error: String(error), stack: (error as Error)?.stack });
    return problemResponse(new GatewayError("internal", "An internal error occurred."), id);
  });
  return app;
}
