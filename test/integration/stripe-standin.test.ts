/**
 * The Stripe stand-in (dev/stripe-standin.ts), driven from inside workerd by the real
 * `stripe` package exactly as production drives api.stripe.com: `createFetchHttpClient()` with
 * `host`/`port`/`protocol` taken from the stand-in's URL. The stand-in is shared by every test file,
 * so its data is never reset: each test works on its own customers and meters. Injected faults and
 * latency are cleared before every test (test/setup-each.ts).
 */
import { env } from "cloudflare:workers";
import Stripe from "stripe";
import { describe, expect, inject, it } from "vitest";
import { stripeError } from "../support/stripe-error";
import { STANDIN_KEY as KEY, STANDIN, standinStripe } from "../support/stripe-standin";

const uniq = () => crypto.randomUUID().slice(0, 8);
const HOUR = 3_600;
const DAY = 86_400;
const nowS = () => Math.floor(Date.now() / 1000);

function stripe(key = KEY, config: Stripe.StripeConfig = {}): Stripe {
  return standinStripe(key, config);
}
const noRetries = () => stripe(KEY, { maxNetworkRetries: 0 });

/** How the stripe package surfaces an error: printed so the reporter's author can see it. */
function describeError(label: string, err: Stripe.errors.StripeError) {
  const seen = {
    class: err.constructor.name,
    type: err.type,
    rawType: err.rawType,
    code: err.code,
    param: err.param,
    statusCode: err.statusCode,
    message: err.message,
    requestId: err.requestId,
    stripeShouldRetry: err.headers?.["stripe-should-retry"],
  };
  console.log(`[stripe-standin] ${label}: ${JSON.stringify(seen)}`);
  return seen;
}

/**
 * A response header of a successful call. With the fetch HTTP client `lastResponse` is the fetch
 * `Response`, so `lastResponse.headers` is a `Headers` object at runtime (not the record its type says).
 */
function responseHeader(result: { lastResponse: { headers: unknown } }, name: string): string | undefined {
  const headers = result.lastResponse.headers as Headers | Record<string, string>;
  return headers instanceof Headers ? (headers.get(name) ?? undefined) : headers[name];
}

async function control(path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${STANDIN.origin}/__control/${path}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`control ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

async function acceptedEvents(customer: string): Promise<Array<{ identifier: string; value: number }>> {
  const res = await fetch(`${STANDIN.origin}/__control/events?customer=${encodeURIComponent(customer)}`);
  return ((await res.json()) as { data: Array<{ identifier: string; value: number }> }).data;
}

async function fixture(client = stripe()) {
  const tag = uniq();
  const customer = await client.customers.create({ name: `Tenant ${tag}`, email: `${tag}@example.test` });
  const meter = await client.billing.meters.create({
    display_name: `Gateway units ${tag}`,
    event_name: `units_${tag}`,
    default_aggregation: { formula: "sum" },
  });
  return { tag, customer, meter };
}

describe("Stripe stand-in through the stripe package in workerd", () => {
  it("is what the Worker's bindings point at", () => {
    const bindings = env as unknown as Record<string, unknown>;
    expect(bindings.STRIPE_API_URL).toBe(inject("stripeUrl"));
    expect(bindings.STRIPE_SECRET_KEY).toBe(KEY);
  });

  it("creates and retrieves a customer", async () => {
    const client = stripe();
    const tag = uniq();
    const created = await client.customers.create({
      name: `Tenant ${tag}`,
      email: `${tag}@example.test`,
      metadata: { tenant_id: tag },
    });
    expect(created.id).toMatch(/^cus_[A-Za-z0-9]{14}$/);
    expect(created).toMatchObject({
      object: "customer",
      name: `Tenant ${tag}`,
      email: `${tag}@example.test`,
      metadata: { tenant_id: tag },
      livemode: false,
    });
    expect(created.lastResponse.requestId).toMatch(/^req_/);
    expect(created.lastResponse.statusCode).toBe(200);

    const fetched = await client.customers.retrieve(created.id);
    expect(fetched.id).toBe(created.id);
    expect((fetched as Stripe.Customer).metadata).toEqual({ tenant_id: tag });

    const missing = await stripeError(client.customers.retrieve("cus_doesnotexist00"));
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 404, code: "resource_missing", param: "id" });
  });

  it("creates, retrieves and lists meters with Stripe's defaults", async () => {
    const client = stripe();
    const { tag, meter } = await fixture(client);
    expect(meter.id).toMatch(/^mtr_test_/);
    expect(meter).toMatchObject({
      object: "billing.meter",
      event_name: `units_${tag}`,
      status: "active",
      default_aggregation: { formula: "sum" },
      customer_mapping: { type: "by_id", event_payload_key: "stripe_customer_id" },
      value_settings: { event_payload_key: "value" },
      event_time_window: null,
      livemode: false,
    });
    expect((await client.billing.meters.retrieve(meter.id)).event_name).toBe(`units_${tag}`);

    const page = await client.billing.meters.list({ limit: 1 });
    expect(page.object).toBe("list");
    expect(page.data).toHaveLength(1);
    const all = await client.billing.meters.list({ limit: 2 }).autoPagingToArray({ limit: 10_000 });
    expect(all.map((m) => m.id)).toContain(meter.id);

    // One active meter per event name.
    const clash = await stripeError(
      client.billing.meters.create({
        display_name: "again",
        event_name: `units_${tag}`,
        default_aggregation: { formula: "sum" },
      }),
    );
    expect(clash).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(clash.param).toBe("event_name");

    // Custom payload keys are honoured.
    const custom = await client.billing.meters.create({
      display_name: `custom ${tag}`,
      event_name: `custom_${tag}`,
      default_aggregation: { formula: "sum" },
      customer_mapping: { type: "by_id", event_payload_key: "cust" },
      value_settings: { event_payload_key: "units" },
    });
    const customer = await client.customers.create({ name: `custom ${tag}` });
    await client.billing.meterEvents.create({
      event_name: `custom_${tag}`,
      payload: { cust: customer.id, units: "6" },
    });
    const start = Math.floor(nowS() / 60) * 60;
    const summaries = await client.billing.meters.listEventSummaries(custom.id, {
      customer: customer.id,
      start_time: start,
      end_time: start + 600,
    });
    expect(summaries.data.map((s) => s.aggregated_value)).toEqual([6]);
  });

  it("aggregates meter events per customer into hourly and whole-range summaries", async () => {
    const client = stripe();
    const { tag, customer, meter } = await fixture(client);
    const other = await client.customers.create({ name: `Other ${tag}` });
    // Two full hours that ended at least an hour ago: [h0, h0+1h) and [h0+1h, h0+2h).
    const h0 = Math.floor(nowS() / HOUR) * HOUR - 3 * HOUR;
    const send = (who: string, timestamp: number, value: number, n: number) =>
      client.billing.meterEvents.create({
        event_name: meter.event_name,
        identifier: `${tag}-${n}`,
        timestamp,
        payload: { stripe_customer_id: who, value: String(value) },
      });

    const first = await send(customer.id, h0, 2, 1);
    expect(first).toMatchObject({
      object: "billing.meter_event",
      event_name: meter.event_name,
      identifier: `${tag}-1`,
      timestamp: h0,
      livemode: false,
      payload: { stripe_customer_id: customer.id, value: "2" },
    });
    await send(customer.id, h0 + HOUR - 1, 3, 2); // last second of the first hour
    await send(customer.id, h0 + HOUR, 5, 3); // first second of the second hour
    await send(customer.id, h0 + HOUR + 1800, 7.5, 4);
    await send(customer.id, h0 - 1, 100, 5); // before the range
    await send(customer.id, h0 + 2 * HOUR, 1000, 6); // end_time is exclusive
    await send(other.id, h0 + 10, 50, 7); // another customer

    const hourly = await client.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: h0,
      end_time: h0 + 2 * HOUR,
      value_grouping_window: "hour",
    });
    expect(hourly.object).toBe("list");
    expect(hourly.has_more).toBe(false);
    expect(hourly.url).toBe(`/v1/billing/meters/${meter.id}/event_summaries`);
    expect(hourly.data.map((s) => [s.start_time, s.end_time, s.aggregated_value])).toEqual([
      [h0 + HOUR, h0 + 2 * HOUR, 12.5], // newest window first
      [h0, h0 + HOUR, 5],
    ]);
    for (const summary of hourly.data) {
      expect(summary).toMatchObject({
        object: "billing.meter_event_summary",
        meter: meter.id,
        livemode: false,
      });
      expect(summary.id).toMatch(/^mtrusg_test_/);
    }

    // Hours without events are left out; a cursor walks the list one window at a time.
    const paged = await client.billing.meters
      .listEventSummaries(meter.id, {
        customer: customer.id,
        start_time: h0 - 5 * HOUR,
        end_time: h0 + 3 * HOUR,
        value_grouping_window: "hour",
        limit: 1,
      })
      .autoPagingToArray({ limit: 100 });
    expect(paged.map((s) => [s.start_time, s.aggregated_value])).toEqual([
      [h0 + 2 * HOUR, 1000],
      [h0 + HOUR, 12.5],
      [h0, 5],
      [h0 - HOUR, 100],
    ]);

    const whole = await client.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: h0,
      end_time: h0 + 2 * HOUR,
    });
    expect(whole.data.map((s) => [s.start_time, s.end_time, s.aggregated_value])).toEqual([
      [h0, h0 + 2 * HOUR, 17.5],
    ]);
    const otherSummary = await client.billing.meters.listEventSummaries(meter.id, {
      customer: other.id,
      start_time: h0,
      end_time: h0 + 2 * HOUR,
    });
    expect(otherSummary.data[0]?.aggregated_value).toBe(50);

    const accepted = await acceptedEvents(customer.id);
    expect(accepted.map((e) => [e.identifier, e.value])).toEqual([
      [`${tag}-1`, 2],
      [`${tag}-2`, 3],
      [`${tag}-3`, 5],
      [`${tag}-4`, 7.5],
      [`${tag}-5`, 100],
      [`${tag}-6`, 1000],
    ]);
  });

  it("insists on Stripe's window alignment for summaries", async () => {
    const client = stripe();
    const { customer, meter } = await fixture(client);
    const h = Math.floor(nowS() / DAY) * DAY - DAY;
    const list = (start_time: number, end_time: number, value_grouping_window?: "hour" | "day") =>
      client.billing.meters.listEventSummaries(meter.id, {
        customer: customer.id,
        start_time,
        end_time,
        ...(value_grouping_window ? { value_grouping_window } : {}),
      });

    for (const [start, end, window, param] of [
      [h + 30, h + 3600, undefined, "start_time"], // not on a minute
      [h, h + 90, undefined, "end_time"],
      [h + 60, h + 3600, "hour", "start_time"], // not on an hour
      [h, h + 3600, "day", "end_time"], // not on a UTC day
    ] as const) {
      const err = await stripeError(list(start, end, window));
      expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(err).toMatchObject({ statusCode: 400, param });
    }
    const empty = await list(h, h + DAY, "day");
    expect(empty.data).toEqual([]);
    expect((await list(h, h + 60)).data.map((s) => s.aggregated_value)).toEqual([0]); // no window: always one

    const missingCustomer = await stripeError(
      client.billing.meters.listEventSummaries(meter.id, {
        customer: "cus_nobody",
        start_time: h,
        end_time: h + 60,
      }),
    );
    expect(missingCustomer).toMatchObject({ statusCode: 400, code: "resource_missing", param: "customer" });
    const missingMeter = await stripeError(
      client.billing.meters.listEventSummaries("mtr_test_nope", {
        customer: customer.id,
        start_time: h,
        end_time: h + 60,
      }),
    );
    expect(missingMeter).toMatchObject({ statusCode: 404, code: "resource_missing" });
  });

  it("refuses a duplicate identifier (24 h) and does not count it twice", async () => {
    const client = stripe();
    const { tag, customer, meter } = await fixture(client);
    const event = {
      event_name: meter.event_name,
      identifier: `usage-${tag}`,
      payload: { stripe_customer_id: customer.id, value: "4" },
    };
    await client.billing.meterEvents.create(event);
    // A retry with a fresh Idempotency-Key (the package generates one per call), as a reporter
    // re-sending after a crash would.
    const duplicate = await stripeError(client.billing.meterEvents.create(event));
    const seen = describeError("duplicate identifier", duplicate);
    expect(duplicate).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(seen).toMatchObject({
      class: "StripeInvalidRequestError",
      type: "StripeInvalidRequestError",
      rawType: "invalid_request_error",
      code: undefined,
      statusCode: 400,
      message: `An event already exists with identifier usage-${tag}.`,
      stripeShouldRetry: "false",
    });
    // Even with a different value or timestamp, the identifier alone decides.
    const changed = await stripeError(
      client.billing.meterEvents.create({ ...event, payload: { ...event.payload, value: "40" } }),
    );
    expect(changed.message).toBe(`An event already exists with identifier usage-${tag}.`);

    expect((await acceptedEvents(customer.id)).map((e) => e.value)).toEqual([4]);
    const start = Math.floor(nowS() / 60) * 60 - 600;
    const summary = await client.billing.meters.listEventSummaries(meter.id, {
      customer: customer.id,
      start_time: start,
      end_time: start + 1200,
    });
    expect(summary.data[0]?.aggregated_value).toBe(4);
  });

  it("replays an Idempotency-Key with the same parameters and refuses it with different ones", async () => {
    const client = stripe();
    const key = `idem-${uniq()}`;
    const first = await client.customers.create({ name: "Idempotent" }, { idempotencyKey: key });
    const again = await client.customers.create({ name: "Idempotent" }, { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    expect(responseHeader(again, "idempotent-replayed")).toBe("true");
    expect(responseHeader(again, "original-request")).toBe(first.lastResponse.requestId);
    expect(again.lastResponse.idempotencyKey).toBe(key);
    expect(responseHeader(first, "idempotent-replayed")).toBeUndefined();

    const mismatch = await stripeError(
      client.customers.create({ name: "Someone else" }, { idempotencyKey: key }),
    );
    const seen = describeError("idempotency key reused with other params", mismatch);
    expect(mismatch).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(seen).toMatchObject({
      type: "StripeIdempotencyError",
      rawType: "idempotency_error",
      statusCode: 400,
      message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
    });
    const otherEndpoint = await stripeError(
      client.billing.meters.create(
        { display_name: "x", event_name: `x_${uniq()}`, default_aggregation: { formula: "sum" } },
        { idempotencyKey: key },
      ),
    );
    expect(otherEndpoint).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
  });

  it("replays a meter event sent again under the same Idempotency-Key instead of refusing it", async () => {
    const client = stripe();
    const { tag, customer, meter } = await fixture(client);
    const params = {
      event_name: meter.event_name,
      identifier: `usage-${tag}`,
      payload: { stripe_customer_id: customer.id, value: "3" },
    };
    const first = await client.billing.meterEvents.create(params, { idempotencyKey: `report-${tag}` });
    const replay = await client.billing.meterEvents.create(params, { idempotencyKey: `report-${tag}` });
    expect(responseHeader(replay, "idempotent-replayed")).toBe("true");
    expect(replay.identifier).toBe(first.identifier);
    expect((await acceptedEvents(customer.id)).map((e) => e.value)).toEqual([3]);
  });

  it("accepts timestamps from 35 days ago up to 5 minutes ahead, and refuses the rest", async () => {
    const client = stripe();
    const { tag, customer, meter } = await fixture(client);
    const at = (timestamp: number, n: number) =>
      client.billing.meterEvents.create({
        event_name: meter.event_name,
        identifier: `${tag}-${n}`,
        timestamp,
        payload: { stripe_customer_id: customer.id, value: "1" },
      });
    await at(nowS() - 35 * DAY + 120, 1);
    await at(nowS() + 240, 2);

    const old = await stripeError(at(nowS() - 35 * DAY - 120, 3));
    describeError("timestamp too old", old);
    expect(old).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(old).toMatchObject({ statusCode: 400, param: "timestamp" });
    const future = await stripeError(at(nowS() + 420, 4));
    describeError("timestamp too far in the future", future);
    expect(future).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(future).toMatchObject({ statusCode: 400, param: "timestamp" });
    // A refused event does not claim its identifier.
    await at(nowS(), 3);
    expect((await acceptedEvents(customer.id)).map((e) => e.identifier)).toEqual([
      `${tag}-1`,
      `${tag}-2`,
      `${tag}-3`,
    ]);
  });

  it("refuses events for an unknown meter, an unknown customer, or without a numeric value", async () => {
    const client = stripe();
    const { customer, meter } = await fixture(client);
    const noMeter = await stripeError(
      client.billing.meterEvents.create({
        event_name: `nothing_${uniq()}`,
        payload: { stripe_customer_id: customer.id, value: "1" },
      }),
    );
    describeError("unknown event_name", noMeter);
    expect(noMeter).toMatchObject({ statusCode: 400, param: "event_name" });
    const noCustomer = await stripeError(
      client.billing.meterEvents.create({
        event_name: meter.event_name,
        payload: { stripe_customer_id: "cus_nobody", value: "1" },
      }),
    );
    describeError("unknown customer", noCustomer);
    expect(noCustomer).toMatchObject({ statusCode: 400, code: "resource_missing" });
    const noValue = await stripeError(
      client.billing.meterEvents.create({
        event_name: meter.event_name,
        payload: { stripe_customer_id: customer.id },
      }),
    );
    expect(noValue).toMatchObject({ statusCode: 400, code: "parameter_missing", param: "payload[value]" });
    const notNumber = await stripeError(
      client.billing.meterEvents.create({
        event_name: meter.event_name,
        payload: { stripe_customer_id: customer.id, value: "lots" },
      }),
    );
    expect(notNumber).toMatchObject({ statusCode: 400, param: "payload[value]" });
    expect(await acceptedEvents(customer.id)).toEqual([]);
  });

  it("answers a bad API key with StripeAuthenticationError", async () => {
    const err = await stripeError(stripe("sk_test_").customers.create({ name: "x" }));
    const seen = describeError("bad API key", err);
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(seen).toMatchObject({ statusCode: 401, rawType: "invalid_request_error" });
    expect(err.message).toMatch(/^Invalid API Key provided: /);
    const publishable = await stripeError(stripe("pk_test_123456789").customers.create({ name: "x" }));
    expect(publishable).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
  });

  it("fails the next calls on demand without applying them (failNext over HTTP)", async () => {
    const client = noRetries();
    const name = `Retried ${uniq()}`;
    await control("fail", { count: 2, status: 500 });
    for (let i = 0; i < 2; i++) {
      const err = await stripeError(client.customers.create({ name }, { idempotencyKey: `fail-${name}` }));
      if (i === 0) describeError("injected 500", err);
      expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
      expect(err).toMatchObject({ statusCode: 500, rawType: "api_error" });
    }
    const created = await client.customers.create({ name }, { idempotencyKey: `fail-${name}` });
    expect(created.name).toBe(name);
    expect(responseHeader(created, "idempotent-replayed")).toBeUndefined(); // the failures saved nothing

    await control("fail", { count: 1, status: 503 });
    expect(await stripeError(client.customers.retrieve(created.id))).toMatchObject({ statusCode: 503 });
    expect((await client.customers.retrieve(created.id)).id).toBe(created.id);
  });

  it("is retried by the stripe package by default on 5xx (each POST carries an automatic Idempotency-Key)", async () => {
    const client = stripe(); // default maxNetworkRetries: 2 (0.5 s, then 1 s backoff)
    const name = `Auto-retried ${uniq()}`;
    await control("fail", { count: 2, status: 500 });
    const created = await client.customers.create({ name });
    expect(created.name).toBe(name);
    expect(created.lastResponse.idempotencyKey).toMatch(/^stripe-node-retry-/);
    expect(await control("fail", { count: 0, status: 500 })).toMatchObject({ pending: [] });
  });

  it("answers 429 as Stripe's rate limit, which the package does not retry by default", async () => {
    await control("fail", { count: 1, status: 429 });
    const err = await stripeError(stripe().customers.create({ name: "rate limited" }));
    const seen = describeError("injected 429", err);
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(seen).toMatchObject({
      type: "StripeRateLimitError",
      rawType: "invalid_request_error",
      code: "rate_limit",
      statusCode: 429,
    });
    // Nothing left queued: the default client (2 retries) made exactly one attempt.
    expect(await control("fail", { count: 0, status: 429 })).toMatchObject({ pending: [] });
  });

  it("forgets injected faults and latency on reset-faults, and keeps its data", async () => {
    const client = noRetries();
    const created = await client.customers.create({ name: `Kept ${uniq()}` });
    await control("fail", { count: 2, status: 503 });
    await control("latency", { ms: 5_000 });
    expect(await control("reset-faults", {})).toEqual({ ok: true, pending: [], ms: 0 });
    const started = Date.now();
    expect((await client.customers.retrieve(created.id)).id).toBe(created.id);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("delays answers on demand", async () => {
    const client = noRetries();
    await control("latency", { ms: 300 });
    try {
      const started = Date.now();
      await client.billing.meters.list({ limit: 1 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const timedOut = await stripeError(
        stripe(KEY, { maxNetworkRetries: 0, timeout: 50 }).billing.meters.list(),
      );
      describeError("timeout", timedOut);
      expect(timedOut).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    } finally {
      await control("latency", { ms: 0 });
    }
  });
});
