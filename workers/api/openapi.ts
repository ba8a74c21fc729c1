/**
 * The OpenAPI 3.1 document of the gateway's own APIs (admin and tenant), built from the same zod
 * route definitions that validate requests, at `/gateway/openapi.json`; Swagger UI at `/gateway/docs`.
 */
import { swaggerUI } from "@hono/swagger-ui";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env";

export function registerOpenApi(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer" });
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", { type: "http", scheme: "bearer" });
  app.doc31("/gateway/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Edge API gateway",
      version: "1.0.0",
      description: "Admin and tenant APIs of the gateway.",
    },
  });
  app.get("/gateway/docs", swaggerUI({ url: "/gateway/openapi.json", title: "Edge API gateway" }));
}
