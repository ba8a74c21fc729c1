/**
 * The Stripe stand-in's objects (dev/stripe-standin.ts): their wire shapes, one Stripe mode's data
 * (`Account`), and the views answered for them (`priceOut`, `subscriptionOut`).
 */
/** One accepted meter event, as `GET /__control/events` lists it. */
export interface AcceptedMeterEvent {
  object: "billing.meter_event";
  created: number;
  event_name: string;
  identifier: string;
  livemode: boolean;
  payload: Record<string, string>;
  timestamp: number;
  /** Not part of Stripe's object: what the stand-in resolved it to. */
  meter: string;
  customer: string;
  value: number;
  request_id: string;
}

export const FORMULAS = ["sum", "count", "last"] as const;
export type Formula = (typeof FORMULAS)[number];

export interface Customer {
  id: string;
  object: "customer";
  address: null;
  balance: number;
  created: number;
  /** Set by the customer's first subscription; a customer bills in one currency. */
  currency: string | null;
  default_source: null;
  delinquent: boolean;
  description: string | null;
  discount: null;
  email: string | null;
  invoice_prefix: string;
  invoice_settings: {
    custom_fields: null;
    default_payment_method: null;
    footer: null;
    rendering_options: null;
  };
  livemode: boolean;
  metadata: Record<string, string>;
  name: string | null;
  next_invoice_sequence: number;
  phone: string | null;
  preferred_locales: string[];
  shipping: null;
  tax_exempt: "none";
  test_clock: null;
}

export interface Meter {
  id: string;
  object: "billing.meter";
  created: number;
  customer_mapping: { event_payload_key: string; type: "by_id" };
  default_aggregation: { formula: Formula };
  display_name: string;
  event_name: string;
  event_time_window: null;
  livemode: boolean;
  status: "active";
  status_transitions: { deactivated_at: null };
  updated: number;
  value_settings: { event_payload_key: string };
}

export interface Product {
  id: string;
  object: "product";
  active: boolean;
  created: number;
  default_price: null;
  description: string | null;
  images: string[];
  livemode: boolean;
  marketing_features: never[];
  metadata: Record<string, string>;
  name: string;
  package_dimensions: null;
  shippable: null;
  statement_descriptor: null;
  tax_code: null;
  tax_details: null;
  type: "service";
  unit_label: null;
  updated: number;
  url: null;
}

export interface PriceTier {
  flat_amount: number | null;
  flat_amount_decimal: string | null;
  unit_amount: number | null;
  unit_amount_decimal: string | null;
  up_to: number | null;
}

export interface Price {
  id: string;
  object: "price";
  active: boolean;
  billing_scheme: "per_unit" | "tiered";
  created: number;
  currency: string;
  custom_unit_amount: null;
  livemode: boolean;
  lookup_key: string | null;
  metadata: Record<string, string>;
  nickname: string | null;
  product: string;
  recurring: {
    interval: "day" | "week" | "month" | "year";
    interval_count: number;
    meter: string | null;
    trial_period_days: null;
    usage_type: "licensed" | "metered";
  } | null;
  tax_behavior: "unspecified";
  /** Stripe's "includable" field: in an answer only when expanded (`expand[]=tiers`). */
  tiers?: PriceTier[];
  tiers_mode: "graduated" | "volume" | null;
  transform_quantity: null;
  type: "one_time" | "recurring";
  unit_amount: number | null;
  unit_amount_decimal: string | null;
}

export interface SubscriptionItem {
  id: string;
  object: "subscription_item";
  billing_thresholds: null;
  created: number;
  current_period_end: number;
  current_period_start: number;
  current_trial: null;
  discounts: never[];
  metadata: Record<string, string>;
  /** The legacy Plan view of the price, which Stripe still answers next to it. */
  plan: Record<string, unknown>;
  price: Price;
  quantity?: number;
  subscription: string;
  tax_rates: never[];
}

export interface Subscription {
  id: string;
  object: "subscription";
  application: null;
  application_fee_percent: null;
  automatic_tax: { disabled_reason: null; enabled: false; liability: null };
  billing_cycle_anchor: number;
  billing_cycle_anchor_config: null;
  billing_mode: { flexible: null; type: "classic" };
  billing_schedules: never[];
  billing_thresholds: null;
  cancel_at: null;
  cancel_at_period_end: boolean;
  canceled_at: number | null;
  cancellation_details: {
    comment: null;
    feedback: null;
    feedback_option: null;
    reason: "cancellation_requested" | "payment_failed" | null;
  };
  collection_method: "charge_automatically" | "send_invoice";
  created: number;
  currency: string;
  customer: string;
  customer_account: null;
  days_until_due: number | null;
  default_payment_method: null;
  default_source: null;
  default_tax_rates: never[];
  description: string | null;
  discounts: never[];
  ended_at: number | null;
  invoice_settings: {
    account_tax_ids: null;
    custom_fields: null;
    description: null;
    footer: null;
    issuer: { type: "self" };
  };
  items: { object: "list"; data: SubscriptionItem[]; has_more: false; url: string };
  /** The id of the subscription's newest invoice. */
  latest_invoice: string | null;
  livemode: boolean;
  managed_payments: null;
  metadata: Record<string, string>;
  next_pending_invoice_item_invoice: null;
  on_behalf_of: null;
  pause_collection: null;
  payment_settings: {
    payment_method_options: null;
    payment_method_types: null;
    save_default_payment_method: "off";
  };
  pending_invoice_item_interval: null;
  pending_setup_intent: null;
  pending_update: null;
  schedule: null;
  start_date: number;
  status: "active" | "past_due" | "unpaid" | "canceled";
  test_clock: null;
  transfer_data: null;
  trial_end: null;
  trial_settings: { end_behavior: { billing_cycle_anchor: null; missing_payment_method: "create_invoice" } };
  trial_start: null;
}

export interface InvoiceItem {
  id: string;
  object: "invoiceitem";
  amount: number;
  currency: string;
  customer: string;
  customer_account: null;
  date: number;
  description: string;
  discountable: boolean;
  discounts: never[];
  /** The invoice it was billed on; null while pending. */
  invoice: string | null;
  livemode: boolean;
  metadata: Record<string, string>;
  parent: {
    subscription_details: { subscription: string; subscription_item: null };
    type: "subscription_details";
  };
  period: { start: number; end: number };
  pricing: {
    price_details: { price: string; product: string };
    type: "price_details";
    unit_amount_decimal: string;
  };
  proration: boolean;
  quantity: number;
  quantity_decimal: string;
  tax_rates: never[];
  test_clock: null;
}

export interface SavedResponse {
  method: string;
  path: string;
  params: string;
  status: number;
  body: unknown;
  requestId: string;
  expiresAt: number;
}

/** One Stripe mode's data (test or live keys). */
export type PaymentOutcome = "succeed" | "fail";

/** One line of an invoice (api/invoice-line-item/object). */
export interface InvoiceLine {
  id: string;
  object: "line_item";
  amount: number;
  currency: string;
  description: string;
  discount_amounts: never[];
  discountable: boolean;
  discounts: never[];
  invoice: string;
  livemode: boolean;
  metadata: Record<string, string>;
  parent:
    | {
        type: "subscription_item_details";
        invoice_item_details: null;
        subscription_item_details: {
          invoice_item: null;
          proration: false;
          proration_details: { credited_items: null };
          subscription: string;
          subscription_item: string;
        };
      }
    | {
        type: "invoice_item_details";
        subscription_item_details: null;
        invoice_item_details: {
          invoice_item: string;
          proration: boolean;
          proration_details: { credited_items: null };
          subscription: string | null;
        };
      };
  period: { start: number; end: number };
  pricing: {
    price_details: { price: string; product: string };
    type: "price_details";
    unit_amount_decimal: string | null;
  };
  pretax_credit_amounts: never[];
  quantity: number;
  quantity_decimal: string;
  subscription: string;
  subtotal: number;
  taxes: never[];
}

/**
 * The fields Stripe answers on every invoice that the stand-in never sets (no tax ids, addresses,
 * shipping, custom fields, revisions or test clocks): their values when unused.
 */
export const UNUSED_INVOICE_FIELDS = {
  account_tax_ids: null,
  application: null,
  automatically_finalizes_at: null,
  custom_fields: null,
  customer_account: null,
  customer_address: null,
  customer_phone: null,
  customer_shipping: null,
  customer_tax_exempt: "none",
  customer_tax_ids: [],
  default_source: null,
  default_tax_rates: [],
  footer: null,
  from_invoice: null,
  last_finalization_error: null,
  latest_revision: null,
  on_behalf_of: null,
  payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
  receipt_number: null,
  rendering: null,
  shipping_cost: null,
  shipping_details: null,
  statement_descriptor: null,
  test_clock: null,
  total_pretax_credit_amounts: [],
} as const;

/** An invoice (api/invoices/object), in the shape of API versions since 2025-03-31 (`parent`). */
export interface Invoice extends Readonly<typeof UNUSED_INVOICE_FIELDS> {
  id: string;
  object: "invoice";
  account_country: null;
  account_name: null;
  amount_due: number;
  amount_overpaid: number;
  amount_paid: number;
  amount_remaining: number;
  amount_shipping: number;
  attempt_count: number;
  attempted: boolean;
  auto_advance: boolean;
  automatic_tax: {
    disabled_reason: null;
    enabled: false;
    liability: null;
    provider: null;
    status: null;
  };
  billing_reason: "subscription_cycle";
  collection_method: "charge_automatically" | "send_invoice";
  created: number;
  currency: string;
  customer: string;
  customer_email: string | null;
  customer_name: string | null;
  default_payment_method: null;
  description: null;
  discounts: never[];
  due_date: number | null;
  effective_at: number | null;
  ending_balance: number | null;
  hosted_invoice_url: string | null;
  invoice_pdf: string | null;
  issuer: { type: "self" };
  lines: { object: "list"; data: InvoiceLine[]; has_more: false; url: string };
  livemode: boolean;
  metadata: Record<string, string>;
  next_payment_attempt: number | null;
  number: string | null;
  parent: {
    quote_details: null;
    subscription_details: { metadata: Record<string, string>; subscription: string };
    type: "subscription_details";
  };
  period_end: number;
  period_start: number;
  post_payment_credit_notes_amount: number;
  pre_payment_credit_notes_amount: number;
  starting_balance: number;
  status: "draft" | "open" | "paid" | "uncollectible" | "void";
  status_transitions: {
    finalized_at: number | null;
    marked_uncollectible_at: number | null;
    paid_at: number | null;
    voided_at: number | null;
  };
  subtotal: number;
  subtotal_excluding_tax: number;
  total: number;
  total_discount_amounts: never[];
  total_excluding_tax: number;
  total_taxes: never[];
  webhooks_delivered_at: number | null;
}

/** A Stripe Event (api/events/object): `data.object` is a snapshot taken when it happened. */
export interface StripeEvent {
  id: string;
  object: "event";
  api_version: string;
  created: number;
  data: { object: unknown; previous_attributes?: Record<string, unknown> };
  livemode: boolean;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

/** One line of a Checkout Session (api/checkout/sessions/line_items). */
export interface CheckoutLineItem {
  id: string;
  object: "item";
  amount_discount: number;
  amount_subtotal: number;
  amount_tax: number;
  amount_total: number;
  currency: string;
  description: string;
  price: Price;
  quantity: number;
}

/** A Checkout Session in `payment` mode (api/checkout/sessions/object). */
export interface CheckoutSession {
  id: string;
  object: "checkout.session";
  amount_subtotal: number;
  amount_total: number;
  cancel_url: string | null;
  client_reference_id: string | null;
  created: number;
  currency: string;
  customer: string | null;
  customer_email: string | null;
  expires_at: number;
  /** Stripe's includable field: in an answer only when expanded (`expand[]=line_items`). */
  line_items?: { object: "list"; data: CheckoutLineItem[]; has_more: false; url: string };
  livemode: boolean;
  metadata: Record<string, string>;
  mode: "payment";
  payment_intent: string | null;
  /** Not answered: `payment_intent_data[metadata]`, kept for the payment intent. */
  payment_intent_metadata?: Record<string, string>;
  payment_status: "paid" | "unpaid";
  status: "complete" | "expired" | "open";
  success_url: string | null;
  ui_mode: "hosted";
  url: string | null;
}

export class Account {
  customers = new Map<string, Customer>();
  meters = new Map<string, Meter>();
  products = new Map<string, Product>();
  prices = new Map<string, Price>();
  subscriptions = new Map<string, Subscription>();
  invoiceItems = new Map<string, InvoiceItem>();
  events: AcceptedMeterEvent[] = [];
  /** identifier → expiry (ms). */
  identifiers = new Map<string, number>();
  idempotency = new Map<string, SavedResponse>();
  invoices = new Map<string, Invoice>();
  /** Stripe Event objects (`GET /v1/events`), oldest first. */
  stripeEvents: StripeEvent[] = [];
  checkoutSessions = new Map<string, CheckoutSession>();
  /** customer → the outcome of its payments until changed (default succeed). */
  paymentOutcomes = new Map<string, PaymentOutcome>();

  toJSON() {
    return {
      customers: [...this.customers.values()],
      meters: [...this.meters.values()],
      products: [...this.products.values()],
      prices: [...this.prices.values()],
      subscriptions: [...this.subscriptions.values()],
      invoiceItems: [...this.invoiceItems.values()],
      events: this.events,
      identifiers: [...this.identifiers],
      idempotency: [...this.idempotency],
      invoices: [...this.invoices.values()],
      stripeEvents: this.stripeEvents,
      checkoutSessions: [...this.checkoutSessions.values()],
      paymentOutcomes: [...this.paymentOutcomes],
    };
  }

  static fromJSON(json: ReturnType<Account["toJSON"]> | undefined): Account {
    const account = new Account();
    if (!json) return account;
    for (const c of json.customers) account.customers.set(c.id, c);
    for (const m of json.meters) account.meters.set(m.id, m);
    for (const p of json.products ?? []) account.products.set(p.id, p);
    for (const p of json.prices ?? []) account.prices.set(p.id, p);
    for (const sub of json.subscriptions ?? []) account.subscriptions.set(sub.id, sub);
    for (const ii of json.invoiceItems ?? []) account.invoiceItems.set(ii.id, ii);
    account.events = json.events;
    account.identifiers = new Map(json.identifiers);
    account.idempotency = new Map(json.idempotency);
    for (const invoice of json.invoices ?? []) account.invoices.set(invoice.id, invoice);
    account.stripeEvents = json.stripeEvents ?? [];
    for (const session of json.checkoutSessions ?? []) account.checkoutSessions.set(session.id, session);
    account.paymentOutcomes = new Map(json.paymentOutcomes ?? []);
    return account;
  }
}

/** The legacy Plan object a subscription item still carries next to its price (api/plans/object). */
export function planView(price: Price): Record<string, unknown> {
  return {
    id: price.id,
    object: "plan",
    active: price.active,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    billing_scheme: price.billing_scheme,
    created: price.created,
    currency: price.currency,
    interval: price.recurring?.interval ?? "month",
    interval_count: price.recurring?.interval_count ?? 1,
    livemode: price.livemode,
    metadata: price.metadata,
    meter: price.recurring?.meter ?? null,
    nickname: price.nickname,
    product: price.product,
    tiers_mode: price.tiers_mode,
    transform_usage: null,
    trial_period_days: null,
    usage_type: price.recurring?.usage_type ?? "licensed",
  };
}

/** A price as answered: `tiers` only when expanded. */
export function priceOut(price: Price, withTiers: boolean): Price {
  const { tiers, ...rest } = price;
  return withTiers && tiers ? { ...rest, tiers } : rest;
}

export function subscriptionOut(subscription: Subscription): Subscription {
  return {
    ...subscription,
    items: {
      ...subscription.items,
      data: subscription.items.data.map((item) => ({ ...item, price: priceOut(item.price, false) })),
    },
  };
}
