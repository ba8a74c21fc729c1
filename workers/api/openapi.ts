/**
 * The OpenAPI 3.1 document of the gateway's own APIs (admin and tenant), built from the same zod
 * route definitions that validate requests, at `/gateway/openapi.json`; its reference page at
 * `/gateway/docs`, rendered by the Worker (workers/web/reference/) with no script or style from
 * another origin, under the web faces' security headers.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { GatewayDocsPage } from "../web/reference/gateway-docs";
import { buildReference } from "../web/reference/view-model";
import { webHeaders } from "../web/security";
import { registerWebhookPayloads } from "./webhook-schemas";

const DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Edge API gateway",
    version: "1.0.0",
    description: "Admin and tenant APIs of the gateway.",
  },
};

/**
 * The app whose routes make the document. workers/index.ts builds one app per isolate, and its
 * routes never change after start-up, so the document — and the reference page made from it — is
 * built once per isolate, on first use (not at start-up, where it would slow every cold start). The
 * page is kept for one origin (its curl commands name it), so a request for another host renders
 * its own and cannot change what this origin's visitors get.
 */
let source: OpenAPIHono<AppEnv> | undefined;
let document: unknown;
let page: { origin: string; html: string } | undefined;

/** The gateway's own OpenAPI 3.1 document (admin and tenant operations), e.g. for the portal's docs. */
export function gatewayDocument(): unknown {
  if (document === undefined) {
    if (!source) throw new Error("registerOpenApi has not run: no document to show");
    document = source.getOpenAPI31Document(DOCUMENT);
  }
  return document;
}

export function registerOpenApi(app: OpenAPIHono<AppEnv>): void {
  source = app;
  document = undefined;
  page = undefined;
  app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer" });
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", { type: "http", scheme: "bearer" });
  registerWebhookPayloads(app);
  app.doc31("/gateway/openapi.json", DOCUMENT);
  app.use("/gateway/docs", ...webHeaders());
  app.get("/gateway/docs", async (c) => {
    const origin = new URL(c.req.url).origin;
    if (page?.origin !== origin) {
      const view = buildReference(gatewayDocument());
      page = {
        origin,
        html: `<!doctype html>${await GatewayDocsPage({ view, baseUrl: origin }).toString()}`,
      };
    }
    return c.html(page.html);
  });
}
