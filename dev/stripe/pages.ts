/**
 * The Stripe stand-in's browser pages, standing in for checkout.stripe.com and invoice.stripe.com:
 * a Checkout Session's pay page and an invoice's hosted page and printable copy. Every value that
 * callers chose (product names, descriptions, metadata, URLs) is HTML-escaped.
 * Choice: the "PDF" is a plain-text copy of the invoice (no PDF is rendered).
 */
import type { CheckoutSession, Invoice } from "./objects";

export function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );
}

/** `1234` usd → `USD 12.34` (exact: integer minor units, 2 decimals; zero-decimal currencies aside). */
export function money(amount: number, currency: string): string {
  const sign = amount < 0 ? "-" : "";
  const abs = Math.abs(amount);
  return `${currency.toUpperCase()} ${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** The pay page of a session: its lines, total, and a Pay button that POSTs back to the same path. */
export function checkoutPage(session: CheckoutSession): string {
  const rows = (session.line_items?.data ?? [])
    .map(
      (line) =>
        `<tr><td>${escapeHtml(line.description)}</td><td class="n">${line.quantity}</td><td class="n">${escapeHtml(money(line.amount_total, line.currency))}</td></tr>`,
    )
    .join("");
  const action =
    session.status === "open"
      ? `<form method="post"><button type="submit">Pay ${escapeHtml(money(session.amount_total, session.currency))}</button></form>` +
        (session.cancel_url ? `<p><a href="${escapeHtml(session.cancel_url)}">Cancel</a></p>` : "")
      : `<p class="status">This Checkout Session is ${escapeHtml(session.status)}.</p>`;
  return layout(
    "Checkout",
    `<h1>Checkout</h1>
<p class="muted">Stripe stand-in, test mode: no card is charged.</p>
<table><thead><tr><th>Item</th><th class="n">Qty</th><th class="n">Amount</th></tr></thead>
<tbody>${rows}</tbody>
<tfoot><tr><th colspan="2">Total</th><th class="n">${escapeHtml(money(session.amount_total, session.currency))}</th></tr></tfoot></table>
${action}`,
  );
}

/** Shown after paying when the session has no success_url. */
export function paidPage(session: CheckoutSession): string {
  return layout(
    "Paid",
    `<h1>Paid</h1><p>${escapeHtml(money(session.amount_total, session.currency))} received. You can close this page.</p>`,
  );
}

export function invoicePage(invoice: Invoice): string {
  const rows = invoice.lines.data
    .map(
      (line) =>
        `<tr><td>${escapeHtml(line.description)}</td><td class="n">${escapeHtml(line.quantity)}</td><td class="n">${escapeHtml(money(line.amount, line.currency))}</td></tr>`,
    )
    .join("");
  return layout(
    `Invoice ${invoice.number ?? invoice.id}`,
    `<h1>Invoice ${escapeHtml(invoice.number ?? invoice.id)}</h1>
<p class="muted">${escapeHtml(invoice.customer_name ?? invoice.customer_email ?? invoice.customer)} ·
${escapeHtml(day(invoice.period_start))} – ${escapeHtml(day(invoice.period_end))} · status <b>${escapeHtml(invoice.status)}</b></p>
<table><thead><tr><th>Description</th><th class="n">Qty</th><th class="n">Amount</th></tr></thead>
<tbody>${rows}</tbody>
<tfoot><tr><th colspan="2">Total</th><th class="n">${escapeHtml(money(invoice.total, invoice.currency))}</th></tr>
<tr><th colspan="2">Amount due</th><th class="n">${escapeHtml(money(invoice.amount_due, invoice.currency))}</th></tr>
<tr><th colspan="2">Amount paid</th><th class="n">${escapeHtml(money(invoice.amount_paid, invoice.currency))}</th></tr></tfoot></table>
${invoice.invoice_pdf ? `<p><a href="${escapeHtml(invoice.invoice_pdf)}">Download</a></p>` : ""}`,
  );
}

export function invoiceText(invoice: Invoice): string {
  const lines = invoice.lines.data.map((l) => `${l.description}\t${money(l.amount, l.currency)}`);
  return [
    `Invoice ${invoice.number ?? invoice.id} (${invoice.status})`,
    `Customer ${invoice.customer}`,
    `Period ${day(invoice.period_start)} – ${day(invoice.period_end)}`,
    ...lines,
    `Total\t${money(invoice.total, invoice.currency)}`,
    `Amount due\t${money(invoice.amount_due, invoice.currency)}`,
    `Amount paid\t${money(invoice.amount_paid, invoice.currency)}`,
    "",
  ].join("\n");
}

function day(epochS: number): string {
  return new Date(epochS * 1000).toISOString().slice(0, 10);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1a1f36}
table{width:100%;border-collapse:collapse;margin:1rem 0}th,td{padding:.4rem;border-bottom:1px solid #e3e8ee;text-align:left}
.n{text-align:right}.muted{color:#697386}button{font:inherit;padding:.6rem 1.4rem;border:0;border-radius:6px;background:#635bff;color:#fff;cursor:pointer}
</style></head><body>
${body}
</body></html>
`;
}
