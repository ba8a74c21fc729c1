/**
 * `POST /admin/v1/billing/report`: the billing reporter run now, from the admin API, instead of
 * waiting for the next cron minute — and, with `openHours`, the hours still open as well (before
 * closing a period by hand, or to watch usage reach an invoice in the local demo).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { added } from "../../audit/changes";
import type { AppEnv } from "../../env";
import { reportAndChain } from "../../metering/stripe-reporter";
import { json, problemResponses, adminSecurity as security } from "../schemas";

const route = createRoute({
  method: "post",
  path: "/admin/v1/billing/report",
  tags: ["Admin: billing"],
  security,
  description:
    "Sends the billing outbox to Stripe now, as the cron does every minute: every tenant-hour that has ended plus `STRIPE_REPORT_LATENESS_S`. With `?openHours=true`, also the hours still open, each with its units so far; units that arrive later in such an hour go out as a delta (one more meter event for that tenant-hour). Rows past one run's budget are chained through the usage queue (`more: true`).",
  request: {
    query: z.object({
      openHours: z
        .enum(["true", "false"])
        .default("false")
        .openapi({ description: "Also the hours still open." }),
    }),
  },
  responses: {
    200: {
      description: "What this run sent",
      ...json(
        z
          .object({
            enabled: z
              .boolean()
              .openapi({ description: "False when `STRIPE_SECRET_KEY` is not set: nothing is sent." }),
            sent: z.number().int(),
            retrying: z.number().int(),
            failed: z.number().int(),
            more: z.boolean(),
          })
          .openapi("BillingReport"),
      ),
    },
    ...problemResponses(400, 401),
  },
});

export function registerAdminBillingReport(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const openHours = c.req.valid("query").openHours === "true";
    const summary = await reportAndChain(c.env, Date.now(), undefined, { openHours });
    c.set("audit", {
      action: "billing.report",
      tenantId: null,
      targets: [],
      changes: added("report", { openHours, ...summary }),
    });
    return c.json(summary, 200);
  });
}
