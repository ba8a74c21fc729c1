/**
 * What the Stripe stand-in serves outside its v1 API (no auth; local tests and demos only):
 * - control endpoints under `/_standin/` (JSON bodies): the clock, a customer's payment outcome,
 *   the payment retry rules, completing a Checkout Session without a browser;
 * - the pages Stripe would host: `/checkout/pay/:id` (a session's pay page; POST pays) and
 *   `/invoices/:id` (an invoice's hosted page; `/invoices/:id/pdf` its printable copy).
 * Refusals are 400 (404 for an unknown id) with `{ error: { type: "invalid_request_error", message } }`.
 */

import { completeSession, sessionOut, successUrl } from "./checkout";
import type { StandInClock } from "./clock";
import { clockMoment } from "./events";
import type { RetryRules } from "./invoices";
import type { Account, CheckoutSession, Invoice } from "./objects";
import { checkoutPage, escapeHtml, invoicePage, invoiceText, paidPage } from "./pages";

export interface LocalAnswer {
  status: number;
  /** JSON for a value, or a page/text with its content type. */
  body: unknown;
  contentType?: "text/html; charset=utf-8" | "text/plain; charset=utf-8";
  headers?: Record<string, string>;
}

export interface LocalDeps {
  /** The two modes' data, test first. */
  accounts(): Array<{ account: Account; livemode: boolean }>;
  clock: StandInClock;
  /** Runs what the clock made due in every mode. */
  runDue(): void;
  rules: { get(): RetryRules; set(rules: RetryRules): void };
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The answer for a request outside /v1, or null when the path is not one of these. */
export function localAnswer(deps: LocalDeps, method: string, path: string, raw: string): LocalAnswer | null {
  try {
    if (path.startsWith("/_standin/")) return control(deps, method, path, raw);
    return page(deps, method, path);
  } catch (err) {
    if (!(err instanceof Refusal) && !(err instanceof RangeError) && !(err instanceof SyntaxError)) throw err;
    const status = err instanceof Refusal ? err.status : 400;
    return { status, body: { error: { type: "invalid_request_error", message: err.message } } };
  }
}

function control(deps: LocalDeps, method: string, path: string, raw: string): LocalAnswer | null {
  const clockNow = () => {
    const now = Math.floor(deps.clock.nowMs() / 1000);
    return { now, iso: new Date(now * 1000).toISOString() };
  };
  if (method === "GET" && path === "/_standin/clock") return ok(clockNow());
  if (method === "POST" && path === "/_standin/clock/advance") {
    const body = jsonObject(raw, ["seconds", "to"]);
    if ((body.seconds === undefined) === (body.to === undefined))
      throw new Refusal(400, 'give exactly one of "seconds" (to move by) or "to" (epoch seconds)');
    if (body.seconds !== undefined) deps.clock.advance(body.seconds as number);
    else deps.clock.advanceTo(body.to as number);
    deps.runDue();
    return ok(clockNow());
  }
  if (method === "POST" && path === "/_standin/billing/retries") {
    const body = jsonObject(raw, ["attempts", "interval_days", "exhausted"]);
    const current = deps.rules.get();
    const attempts = body.attempts ?? current.attempts;
    const intervalDays = body.interval_days ?? current.intervalDays;
    const exhausted = body.exhausted ?? current.exhausted;
    if (!Number.isSafeInteger(attempts) || (attempts as number) < 1)
      throw new Refusal(400, '"attempts" must be an integer ≥ 1');
    if (!Number.isSafeInteger(intervalDays) || (intervalDays as number) < 1)
      throw new Refusal(400, '"interval_days" must be an integer ≥ 1');
    if (exhausted !== "canceled" && exhausted !== "unpaid")
      throw new Refusal(400, '"exhausted" must be "canceled" or "unpaid"');
    deps.rules.set({ attempts: attempts as number, intervalDays: intervalDays as number, exhausted });
    return ok({ attempts, interval_days: intervalDays, exhausted });
  }
  const outcome = /^\/_standin\/customers\/([^/]+)\/payment_outcome$/.exec(path);
  if (method === "POST" && outcome) {
    const id = decodeURIComponent(outcome[1] ?? "");
    const body = jsonObject(raw, ["outcome"]);
    if (body.outcome !== "succeed" && body.outcome !== "fail")
      throw new Refusal(400, '"outcome" must be "succeed" or "fail"');
    const owner = deps.accounts().find(({ account }) => account.customers.has(id));
    if (!owner) throw new Refusal(404, `No such customer: '${id}'`);
    owner.account.paymentOutcomes.set(id, body.outcome);
    return ok({ customer: id, outcome: body.outcome });
  }
  const complete = /^\/_standin\/checkout\/sessions\/([^/]+)\/complete$/.exec(path);
  if (method === "POST" && complete) {
    jsonObject(raw, []);
    const { account, livemode, session } = sessionOf(deps, decodeURIComponent(complete[1] ?? ""));
    try {
      completeSession(clockMoment(account, livemode, nowS(deps)), session);
    } catch (err) {
      throw new Refusal(400, (err as Error).message);
    }
    return ok(sessionOut(session, new Set()));
  }
  return {
    status: 404,
    body: { error: { type: "invalid_request_error", message: `Unknown control endpoint ${method} ${path}` } },
  };
}

function page(deps: LocalDeps, method: string, path: string): LocalAnswer | null {
  const pay = /^\/checkout\/pay\/([^/]+)$/.exec(path);
  if (pay && (method === "GET" || method === "POST")) {
    let found: ReturnType<typeof sessionOf>;
    try {
      found = sessionOf(deps, decodeURIComponent(pay[1] ?? ""));
    } catch {
      return html(404, "<!doctype html><title>Not found</title><p>No such Checkout Session.</p>");
    }
    const { account, livemode, session } = found;
    if (method === "GET") {
      if (session.status === "open" && session.expires_at <= nowS(deps)) session.status = "expired";
      return html(200, checkoutPage(session));
    }
    try {
      completeSession(clockMoment(account, livemode, nowS(deps)), session);
    } catch {
      return html(409, checkoutPage(session));
    }
    const next = successUrl(session);
    if (next)
      return { status: 303, body: "", contentType: "text/plain; charset=utf-8", headers: { Location: next } };
    return html(200, paidPage(session));
  }
  const invoice = /^\/invoices\/([^/]+?)(\/pdf)?$/.exec(path);
  if (invoice && method === "GET") {
    const found = invoiceOf(deps, decodeURIComponent(invoice[1] ?? ""));
    if (!found || found.status === "draft")
      return html(404, "<!doctype html><title>Not found</title><p>No such invoice.</p>");
    if (invoice[2])
      return { status: 200, body: invoiceText(found), contentType: "text/plain; charset=utf-8" };
    return html(200, invoicePage(found));
  }
  return null;
}

function sessionOf(
  deps: LocalDeps,
  id: string,
): { account: Account; livemode: boolean; session: CheckoutSession } {
  for (const { account, livemode } of deps.accounts()) {
    const session = account.checkoutSessions.get(id);
    if (session) return { account, livemode, session };
  }
  throw new Refusal(404, `No such checkout.session: '${escapeHtml(id)}'`);
}

function invoiceOf(deps: LocalDeps, id: string): Invoice | undefined {
  for (const { account } of deps.accounts()) {
    const invoice = account.invoices.get(id);
    if (invoice) return invoice;
  }
  return undefined;
}

/** A JSON object body with only the `allowed` keys (an empty body is `{}`). */
function jsonObject(raw: string, allowed: string[]): Record<string, unknown> {
  const parsed: unknown = raw.trim() ? JSON.parse(raw) : {};
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new Refusal(400, "the body must be a JSON object");
  for (const key of Object.keys(parsed)) {
    if (!allowed.includes(key)) throw new Refusal(400, `unknown field "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

const nowS = (deps: LocalDeps) => Math.floor(deps.clock.nowMs() / 1000);
const ok = (body: unknown): LocalAnswer => ({ status: 200, body });
const html = (status: number, body: string): LocalAnswer => ({
  status,
  body,
  contentType: "text/html; charset=utf-8",
});
