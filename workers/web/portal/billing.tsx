/**
 * `/portal/billing`: what the tenant pays, from the same sources as the tenant API — the billing
 * view of `GET /gateway/v1/billing` (workers/billing/billing-view.ts: plan, period, units, the amount
 * so far and its forecast, credits) and the invoice pages of `GET /gateway/v1/invoices` — plus:
 * - dunning: a past-due tenant sees when its requests start being refused and the open invoice's
 *   pay link; a suspended one, that it is suspended;
 * - `POST /portal/billing/top-up`: a prepaid tenant buys credit packs through the same Checkout
 *   Session as `POST /gateway/v1/credits/checkout`, and is sent (303) to Stripe's page, which sends
 *   it back here with `?topup=success|cancel`.
 *
 * Plans are not changed here: there is no tenant-facing plan-change API (the operator changes
 * plans). Amounts are integers in minor units, written with the currency's own digits (format.ts).
 */
import { and, desc, eq } from "drizzle-orm";
import type { Context, Hono } from "hono";
import { type Invoice, invoices, type Plan, type Tenant } from "../../../schema";
import { invoicePage } from "../../api/billing";
import { DEFAULT_LIMIT, PageQuery } from "../../api/pagination";
import { creditsCheckout } from "../../audit/details";
import { type BillingView, billingView } from "../../billing/billing-view";
import { createCreditCheckout, MAX_PACKS } from "../../billing/credits/checkout";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { withTenant } from "../../shared/db";
import { formatMoney, formatUtc, httpUrl } from "../format";
import { CsrfField, Notice } from "../layout";
import { portalTenant } from "./context";
import { portalPage } from "./portal-page";
import { changeRefusal } from "./tenant-gate";

/** Where Stripe's Checkout sends the payer back: this page, with a notice. */
const TOPUP: Record<string, { kind: "ok" | "error"; text: string }> = {
  success: {
    kind: "ok",
    text: "Thank you: your payment went through. The credits appear in your balance as soon as Stripe confirms it (usually within a minute).",
  },
  cancel: { kind: "error", text: "The top-up was canceled: nothing was charged." },
};

/** The top-up's return URLs (the tenant API's defaults too, workers/api/tenant/credits.ts). */
const topUpReturn = (origin: string) => ({
  successUrl: `${origin}/portal/billing?topup=success`,
  cancelUrl: `${origin}/portal/billing?topup=cancel`,
});

/** The newest open invoice of a tenant: what a past-due tenant has to pay. */
async function openInvoice(c: Context<AppEnv>, tenantId: string): Promise<Invoice | undefined> {
  const [row] = await withTenant(c.var.db, tenantId, (tx) =>
    tx
      .select()
      .from(invoices)
      .where(and(eq(invoices.tenantId, tenantId), eq(invoices.status, "open")))
      .orderBy(desc(invoices.stripeCreatedAt))
      .limit(1),
  );
  return row;
}

function Dunning(props: { tenant: Tenant; open: Invoice | undefined; now: number }) {
  const { tenant, open } = props;
  if (tenant.status === "suspended") {
    return (
      <Notice kind="error">
        This account is suspended: API requests are refused. Contact your API provider.
      </Notice>
    );
  }
  if (tenant.status !== "past_due") return null;
  const grace = tenant.graceUntil;
  const pay = httpUrl(open?.hostedInvoiceUrl);
  return (
    <div class="notice notice-error" role="alert" id="dunning">
      <p>
        <strong>
          {grace && grace.getTime() > props.now
            ? `Payment past due: your API requests will be refused from ${formatUtc(grace)}.`
            : `Payment past due: your API requests are refused${grace ? ` since ${formatUtc(grace)}` : ""}.`}
        </strong>
        {tenant.pastDueSince && ` A payment failed on ${formatUtc(tenant.pastDueSince)}.`}
      </p>
      {open && (
        <p>
          {`Open invoice ${open.number ?? open.id}: ${formatMoney(open.amountRemaining, open.currency)} due. `}
          {pay ? (
            <a href={pay} class="button primary" rel="noopener noreferrer" target="_blank">
              Pay the invoice
            </a>
          ) : (
            "Pay it from the invoice Stripe sent you."
          )}
        </p>
      )}
    </div>
  );
}

function Statement(props: { view: BillingView }) {
  const { view } = props;
  const money = (minor: number) => (view.currency ? formatMoney(minor, view.currency) : "—");
  const { units } = view;
  return (
    <div class="grid">
      <section class="card" aria-labelledby="plan-title">
        <h2 id="plan-title">Plan</h2>
        <dl class="facts">
          <dt>Plan</dt>
          <dd id="plan-name">{view.plan.name}</dd>
          <dt>Billing</dt>
          <dd>{view.plan.model}</dd>
          <dt>Period</dt>
          <dd id="period">{`${formatUtc(view.period.start)} – ${formatUtc(view.period.end)}`}</dd>
          <dt>As of</dt>
          <dd>{formatUtc(view.asOf)}</dd>
        </dl>
      </section>
      <section class="card" aria-labelledby="units-title">
        <h2 id="units-title">Units this period</h2>
        <dl class="facts">
          <dt>Used</dt>
          <dd id="units-used">{units.used.toLocaleString("en-US")}</dd>
          {units.included !== null && (
            <>
              <dt>Included</dt>
              <dd id="units-included">{units.included.toLocaleString("en-US")}</dd>
              <dt>Included left</dt>
              <dd id="units-left">{(units.includedRemaining ?? 0).toLocaleString("en-US")}</dd>
            </>
          )}
          <dt>{view.plan.model === "prepaid" ? "Paid from credits" : "Billable"}</dt>
          <dd id="units-billable">{units.billable.toLocaleString("en-US")}</dd>
        </dl>
        {units.included !== null && units.included > 0 && (
          <meter
            aria-label="Included units used"
            min={0}
            max={units.included}
            value={Math.min(units.used, units.included)}
          />
        )}
      </section>
      <section class="card" aria-labelledby="amount-title">
        <h2 id="amount-title">Amount</h2>
        {view.plan.model === "free" ? (
          <p id="amount-so-far">Free plan: nothing is billed.</p>
        ) : view.amount === null ? (
          <p id="amount-so-far">
            {view.plan.model === "prepaid"
              ? "Prepaid: units are paid from your credits."
              : "Too large to compute exactly."}
          </p>
        ) : (
          <dl class="facts">
            <dt>So far</dt>
            <dd id="amount-so-far">{money(view.amount.total)}</dd>
            <dt>Base fee</dt>
            <dd>{money(view.amount.baseFee)}</dd>
            <dt>Usage</dt>
            <dd>{money(view.amount.usage)}</dd>
            <dt>Forecast</dt>
            <dd id="amount-forecast">
              {view.forecast.amount
                ? `${money(view.forecast.amount.total)} (${(view.forecast.units ?? 0).toLocaleString("en-US")} units)`
                : "—"}
            </dd>
          </dl>
        )}
      </section>
    </div>
  );
}

function Credits(props: { view: BillingView; plan: Plan; csrf: string; mayBuy: boolean; packs: string }) {
  const { credits } = props.view;
  const pricing = props.plan.pricing;
  if (!credits) return null;
  return (
    <section class="card" aria-labelledby="credits-title">
      <h2 id="credits-title">Credits</h2>
      <dl class="facts">
        <dt>Balance</dt>
        <dd id="credit-balance">{`${credits.balance.toLocaleString("en-US")} units`}</dd>
        <dt>Held</dt>
        <dd>{`${credits.held.toLocaleString("en-US")} units (requests in flight)`}</dd>
      </dl>
      {props.mayBuy && pricing.model === "prepaid" && (
        <form method="post" action="/portal/billing/top-up" id="top-up">
          <CsrfField csrf={props.csrf} />
          <label for="packs">
            {`Packs to buy (1 pack = ${pricing.creditPack.units.toLocaleString("en-US")} units for ${formatMoney(
              pricing.creditPack.amount,
              pricing.currency,
            )})`}
          </label>
          <input
            id="packs"
            name="packs"
            type="number"
            min={1}
            max={MAX_PACKS}
            step={1}
            required
            value={props.packs}
          />
          <button type="submit" class="primary">
            Top up
          </button>
        </form>
      )}
    </section>
  );
}

function InvoiceRow(props: { invoice: Invoice }) {
  const i = props.invoice;
  const hosted = httpUrl(i.hostedInvoiceUrl);
  const pdf = httpUrl(i.invoicePdf);
  const badge = i.status === "paid" ? "badge-ok" : i.status === "open" ? "badge-warn" : "badge-bad";
  return (
    <tr data-invoice-id={i.id}>
      <td>{i.number ?? <span class="muted">draft</span>}</td>
      <td>{`${formatUtc(i.periodStart)} – ${formatUtc(i.periodEnd)}`}</td>
      <td>
        <span class={`badge ${badge}`}>{i.status}</span>
      </td>
      <td class="num">{formatMoney(i.total, i.currency)}</td>
      <td>
        {hosted && (
          <a href={hosted} rel="noopener noreferrer" target="_blank">
            View
          </a>
        )}
        {hosted && pdf && " · "}
        {pdf && (
          <a href={pdf} rel="noopener noreferrer" target="_blank">
            PDF
          </a>
        )}
      </td>
    </tr>
  );
}

interface PageState {
  notice?: { kind: "ok" | "error"; text: string };
  status?: number;
  packs?: string;
}

async function billingPage(c: Context<AppEnv>, state: PageState = {}) {
  const { tenant, plan } = await portalTenant(c);
  const now = Date.now();
  const query = PageQuery.safeParse({
    limit: c.req.method === "GET" ? c.req.query("limit") : undefined,
    cursor: c.req.method === "GET" ? c.req.query("cursor") : undefined,
  });
  if (!query.success)
    throw new GatewayError("validation_failed", "The page of invoices asked for is not one this list gave.");
  const view = await billingView(c.env, c.var.db, tenant.id, now);
  if (!view) throw new GatewayError("not_found", "No such tenant.");
  const list = await invoicePage(c.var.db, tenant.id, query.data);
  const open = tenant.status === "past_due" ? await openInvoice(c, tenant.id) : undefined;
  const topup = c.req.method === "GET" ? TOPUP[c.req.query("topup") ?? ""] : undefined;
  const notice = state.notice ?? topup;
  return portalPage(
    c,
    { title: "Billing", current: "/portal/billing", who: tenant.name, status: state.status },
    <>
      <Dunning tenant={tenant} open={open} now={now} />
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      <Statement view={view} />
      <Credits
        view={view}
        plan={plan}
        csrf={c.var.web?.csrf ?? ""}
        mayBuy={changeRefusal(tenant, now) === null}
        packs={state.packs ?? "1"}
      />
      <h2>Invoices</h2>
      {list.data.length === 0 ? (
        <p class="muted">No invoices yet.</p>
      ) : (
        <div class="table-wrap">
          <table id="invoices">
            <thead>
              <tr>
                <th>Number</th>
                <th>Period</th>
                <th>Status</th>
                <th class="num">Amount</th>
                <th>Invoice</th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((invoice) => (
                <InvoiceRow invoice={invoice} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.next_cursor && (
        <p>
          <a
            href={`/portal/billing?${new URLSearchParams({
              ...(query.data.limit === DEFAULT_LIMIT ? {} : { limit: String(query.data.limit) }),
              cursor: list.next_cursor,
            })}`}
          >
            Older invoices
          </a>
        </p>
      )}
    </>,
  );
}

/** Registers the billing page and the top-up form (behind the portal's session door and CSRF check). */
export function registerPortalBilling(portal: Hono<AppEnv>): void {
  portal.get("/billing", (c) => billingPage(c));

  portal.post("/billing/top-up", async (c) => {
    const packs = (await c.req.parseBody()).packs;
    const text = typeof packs === "string" ? packs.trim() : "";
    const count = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN;
    const { tenant } = await portalTenant(c);
    const refusal = changeRefusal(tenant, Date.now());
    if (refusal) throw refusal;
    if (!(count >= 1 && count <= MAX_PACKS)) {
      return billingPage(c, {
        notice: { kind: "error", text: `Packs: enter a whole number from 1 to ${MAX_PACKS}.` },
        status: 400,
        packs: text.slice(0, 20),
      });
    }
    const session = await createCreditCheckout(c.env, c.var.db, tenant.id, {
      packs: count,
      ...topUpReturn(new URL(c.req.url).origin),
      requestId: c.var.requestId,
    });
    c.set("audit", creditsCheckout(tenant.id, session));
    const pay = httpUrl(session.url);
    if (!pay) throw new GatewayError("internal", "Stripe returned a checkout URL that is not http(s).");
    return c.redirect(pay, 303);
  });
}
