/**
 * Guards `/admin/v1/*`: `Authorization: Bearer $ADMIN_TOKEN`, compared in constant time. The scheme
 * name is case-insensitive (RFC 9110 §11.1: `bearer`, `BEARER`), the token is not.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { timingSafeEqual } from "../shared/timing-safe";

const CHALLENGE = { "www-authenticate": 'Bearer realm="gateway-admin"' };

export const adminAuth = () =>
  createMiddleware<AppEnv>(async function adminAuth(c, next) {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer +([\x21-\x7e]+)$/i.exec(header);
    if (!c.env.ADMIN_TOKEN) throw new GatewayError("service_unavailable", "The admin API is not configured.");
    if (!match || !(await timingSafeEqual(match[1] as string, c.env.ADMIN_TOKEN))) {
      throw new GatewayError("unauthorized", "A valid admin token is required.", { headers: CHALLENGE });
    }
    await next();
  });
