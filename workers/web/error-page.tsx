/**
 * Errors on the web faces, for a person: the same problem (code, status, detail, request id) as
 * the problem+json the API answers, as a page with a way back. `app.onError` picks this for
 * `/portal` and `/console` requests from a browser (Accept: text/html); scripts get problem+json.
 */
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { ERROR_CODES, type GatewayError } from "../errors";
import { Page } from "./layout";

/** True for a browser asking for a page of a web face. */
export function wantsErrorPage(c: Context<AppEnv>): boolean {
  const path = new URL(c.req.url).pathname;
  const web = /^\/(portal|console)(\/|$)/.test(path);
  return web && (c.req.header("accept") ?? "").includes("text/html");
}

export function errorPage(
  c: Context<AppEnv>,
  error: GatewayError,
  requestId: string,
): Response | Promise<Response> {
  const face = new URL(c.req.url).pathname.startsWith("/console") ? "Console" : "Portal";
  const home = face === "Console" ? "/console" : "/portal";
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  c.header("x-request-id", requestId);
  return c.html(
    <Page title={ERROR_CODES[error.code].title} face={face} nav={[]}>
      <div class="card narrow">
        <p>{error.message}</p>
        <p class="muted">
          Error <code>{error.code}</code> · request <code>{requestId}</code>
        </p>
        <p>
          <a href={home}>Back to the {face.toLowerCase()}</a>
        </p>
      </div>
    </Page>,
    error.status as 400,
  );
}
