/**
 * The Stripe stand-in's Checkout Sessions (api/checkout/sessions), `payment` mode: a session's `url`
 * is a local page (./pages.ts) whose Pay button completes it, as paying on checkout.stripe.com
 * would: `status: complete`, `payment_status: paid`, a `checkout.session.completed` event, then the
 * browser goes to `success_url` (`{CHECKOUT_SESSION_ID}` in it replaced by the session's id).
 * Choices: no payment method is asked for and the payment always succeeds; `mode` defaults to
 * `payment` and the other modes are refused; a price given with `price_data` is not listed among
 * the account's prices; sessions expire 24 h after creation unless `expires_at` says otherwise.
 */
import { emit, type Moment, momentOf } from "./events";
import type { Account, CheckoutLineItem, CheckoutSession, Price } from "./objects";
import {
  allowOnly,
  type Call,
  expansions,
  hash,
  integer,
  invalid,
  metadataOf,
  missing,
  newId,
  nonNegative,
  noSuch,
  optString,
  type Params,
  type Reply,
  reqString,
} from "./wire";

const DAY = 86_400;

export function checkout(origin: () => string) {
  function createSession(call: Call): Reply {
    const p = call.params;
    allowOnly(p, [
      "customer",
      "customer_email",
      "client_reference_id",
      "line_items",
      "mode",
      "success_url",
      "cancel_url",
      "metadata",
      "payment_intent_data",
      "expires_at",
      "expand",
    ]);
    const mode = optString(p, "mode") ?? "payment";
    if (mode !== "payment")
      throw invalid(
        mode === "subscription" || mode === "setup"
          ? `The Stripe stand-in supports Checkout in payment mode only, not ${mode}.`
          : "Invalid mode: must be one of payment, setup, or subscription",
        { param: "mode" },
      );
    const customer = optString(p, "customer") || null;
    if (customer !== null && !call.account.customers.has(customer))
      throw noSuch("customer", customer, "customer", 400);
    const items = hash(p, "line_items");
    if (!items || Object.keys(items).length === 0) throw missing("line_items");
    const id = newId(call.livemode ? "cs_live" : "cs_test", 58);
    const lines = Object.entries(items).map(([i, raw]) => lineItem(call, raw, `line_items[${i}]`));
    const currency = lines[0]?.currency ?? "";
    if (lines.some((line) => line.currency !== currency))
      throw invalid("All line items must have the same currency.", { param: "line_items" });
    const intent = hash(p, "payment_intent_data");
    if (intent) allowOnly(intent, ["metadata", "description"], "payment_intent_data");
    const expiresRaw = optString(p, "expires_at");
    const expiresAt = expiresRaw === undefined ? call.nowS + DAY : integer(expiresRaw, "expires_at");
    if (expiresAt < call.nowS + 30 * 60 || expiresAt > call.nowS + DAY)
      throw invalid("expires_at must be between 30 minutes and 24 hours from now.", { param: "expires_at" });
    const total = lines.reduce((sum, line) => sum + line.amount_total, 0);
    const session: CheckoutSession = {
      id,
      object: "checkout.session",
      amount_subtotal: total,
      amount_total: total,
      cancel_url: optString(p, "cancel_url") || null,
      client_reference_id: optString(p, "client_reference_id") || null,
      created: call.nowS,
      currency,
      customer,
      customer_email: optString(p, "customer_email") || null,
      expires_at: expiresAt,
      line_items: {
        object: "list",
        data: lines,
        has_more: false,
        url: `/v1/checkout/sessions/${id}/line_items`,
      },
      livemode: call.livemode,
      metadata: metadataOf(p),
      mode: "payment",
      payment_intent: null,
      payment_intent_metadata: intent ? metadataOf(intent) : {},
      payment_status: "unpaid",
      status: "open",
      success_url: optString(p, "success_url") || null,
      ui_mode: "hosted",
      url: `${origin()}/checkout/pay/${id}`,
    };
    call.account.checkoutSessions.set(id, session);
    return { status: 200, body: sessionOut(session, expansions(p)) };
  }

  function retrieveSession(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    const session = current(call.account, id, call.nowS);
    return { status: 200, body: sessionOut(session, expansions(call.params)) };
  }

  /** Only an open session can be expired (api/checkout/sessions/expire). */
  function expireSession(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    const session = current(call.account, id, call.nowS);
    if (session.status !== "open")
      throw invalid(`Only Checkout Sessions with a status in ["open"] can be expired.`);
    session.status = "expired";
    session.url = null;
    emit(momentOf(call), "checkout.session.expired", sessionOut(session, new Set()));
    return { status: 200, body: sessionOut(session, expansions(call.params)) };
  }

  return { createSession, retrieveSession, expireSession };
}

/** Pays an open session (the Pay button, or the control endpoint); throws when it is not open. */
export function completeSession(at: Moment, session: CheckoutSession): void {
  expireIfDue(session, at.nowS);
  if (session.status !== "open") throw new Error(`the Checkout Session is ${session.status}, not open`);
  session.status = "complete";
  session.payment_status = "paid";
  session.payment_intent = newId("pi", 24);
  session.url = null;
  emit(at, "checkout.session.completed", sessionOut(session, new Set()));
}

/** Where the browser goes after paying: `success_url` with `{CHECKOUT_SESSION_ID}` filled in. */
export function successUrl(session: CheckoutSession): string | null {
  return session.success_url?.replaceAll("{CHECKOUT_SESSION_ID}", session.id) ?? null;
}

/**
 * The fields Stripe answers on every session that the stand-in never sets (it offers no tax,
 * discounts, shipping, custom fields, consent or invoices): their values when unused.
 */
const UNUSED_SESSION_FIELDS = {
  adaptive_pricing: null,
  after_expiration: null,
  allow_promotion_codes: null,
  allowed_payment_method_types: null,
  automatic_tax: { enabled: false, liability: null, provider: null, status: null },
  billing_address_collection: null,
  client_secret: null,
  collected_information: null,
  consent: null,
  consent_collection: null,
  currency_conversion: null,
  custom_fields: [],
  custom_text: {
    after_submit: null,
    shipping_address: null,
    submit: null,
    terms_of_service_acceptance: null,
  },
  customer_account: null,
  customer_creation: null,
  customer_details: null,
  discounts: [],
  integration_identifier: null,
  invoice: null,
  invoice_creation: null,
  locale: null,
  managed_payments: null,
  origin_context: null,
  payment_link: null,
  payment_method_collection: null,
  payment_method_configuration_details: null,
  payment_method_options: null,
  payment_method_types: ["card"],
  permissions: null,
  phone_number_collection: { enabled: false },
  recovered_from: null,
  saved_payment_method_options: null,
  setup_intent: null,
  shipping_address_collection: null,
  shipping_cost: null,
  shipping_options: [],
  submit_type: null,
  subscription: null,
  total_details: null,
  wallet_options: null,
} as const;

/** A session as answered: `line_items` only when expanded; internal fields never. */
export function sessionOut(session: CheckoutSession, expand: Set<string>): CheckoutSession {
  const { line_items, payment_intent_metadata: _m, ...rest } = session;
  const answered = { ...UNUSED_SESSION_FIELDS, ...rest };
  return expand.has("line_items") && line_items ? { ...answered, line_items } : answered;
}

function current(account: Account, id: string, nowS: number): CheckoutSession {
  const session = account.checkoutSessions.get(id);
  if (!session) throw noSuch("checkout.session", id, "session", 404);
  expireIfDue(session, nowS);
  return session;
}

/** Choice: a session past `expires_at` turns `expired` when next looked at, without an event. */
function expireIfDue(session: CheckoutSession, nowS: number): void {
  if (session.status !== "open" || session.expires_at > nowS) return;
  session.status = "expired";
  session.url = null;
}

function lineItem(call: Call, raw: Params | string, name: string): CheckoutLineItem {
  if (typeof raw === "string") throw invalid(`Invalid object: ${name} must be a hash.`, { param: name });
  allowOnly(raw, ["price", "price_data", "quantity"], name);
  const quantity = nonNegative(reqString(raw, "quantity", `${name}[quantity]`), `${name}[quantity]`);
  if (quantity < 1) throw invalid(`${name}[quantity] must be at least 1.`, { param: `${name}[quantity]` });
  const priceId = optString(raw, "price", `${name}[price]`);
  const data = hash(raw, "price_data");
  if ((priceId === undefined) === (data === undefined))
    throw invalid(`${name} needs exactly one of price or price_data.`, { param: `${name}[price]` });
  let price: Price;
  let description: string;
  if (priceId !== undefined) {
    const found = call.account.prices.get(priceId);
    if (!found) throw noSuch("price", priceId, `${name}[price]`, 400);
    if (found.type !== "one_time" || found.unit_amount === null)
      throw invalid(
        "You specified `payment` mode but passed a recurring or tiered price. Use a one-time price with unit_amount.",
        { param: `${name}[price]` },
      );
    price = found;
    description = call.account.products.get(found.product)?.name ?? found.id;
  } else {
    ({ price, description } = inlinePrice(call, data as Params, `${name}[price_data]`));
  }
  const amount = (price.unit_amount ?? 0) * quantity;
  return {
    id: newId("li", 24),
    object: "item",
    amount_discount: 0,
    amount_subtotal: amount,
    amount_tax: 0,
    amount_total: amount,
    currency: price.currency,
    description,
    price,
    quantity,
  };
}

/** `price_data`: currency, unit_amount and `product_data[name]` (or an existing `product`). */
function inlinePrice(call: Call, data: Params, name: string): { price: Price; description: string } {
  allowOnly(data, ["currency", "unit_amount", "product", "product_data"], name);
  const currency = reqString(data, "currency", `${name}[currency]`).toLowerCase();
  if (!/^[a-z]{3}$/.test(currency))
    throw invalid(`Invalid currency: ${currency}`, { param: `${name}[currency]` });
  const unit = nonNegative(reqString(data, "unit_amount", `${name}[unit_amount]`), `${name}[unit_amount]`);
  let product = optString(data, "product", `${name}[product]`);
  let description: string;
  const productData = hash(data, "product_data");
  if ((product === undefined) === (productData === undefined))
    throw invalid(`${name} needs exactly one of product or product_data.`, { param: `${name}[product]` });
  if (productData) {
    allowOnly(productData, ["name", "description", "metadata"], `${name}[product_data]`);
    description = reqString(productData, "name", `${name}[product_data][name]`);
    product = newId("prod", 14);
  } else {
    const found = call.account.products.get(product as string);
    if (!found) throw noSuch("product", product as string, `${name}[product]`, 400);
    description = found.name;
  }
  const price: Price = {
    id: newId("price", 24),
    object: "price",
    active: false,
    billing_scheme: "per_unit",
    created: call.nowS,
    currency,
    custom_unit_amount: null,
    livemode: call.livemode,
    lookup_key: null,
    metadata: {},
    nickname: null,
    product: product as string,
    recurring: null,
    tax_behavior: "unspecified",
    tiers_mode: null,
    transform_quantity: null,
    type: "one_time",
    unit_amount: unit,
    unit_amount_decimal: String(unit),
  };
  return { price, description };
}
