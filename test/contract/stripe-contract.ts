/**
 * Stripe contract check (node:test, run by `npm run test:contract`, part of `npm test`): every call
 * the gateway makes to Stripe goes to the local stand-in (dev/stripe-standin.ts) over HTTP, and each
 * request and answer is checked against Stripe's published OpenAPI specification and example objects
 * (test/contract/stripe-openapi.ts), so the stand-in cannot drift from Stripe's wire format unnoticed.
 *
 * The calls, and where the gateway makes them:
 * - workers/shared/stripe.ts `createCustomer` (tenant creation) and `ensureMeter` (list meters, create
 *   the meter): called here as they are, through the gateway's own `stripeClient`;
 * - workers/metering/stripe-reporter.ts `send` (a meter event per outbox row, `identifier` = row id)
 *   and workers/metering/reconciliation.ts `stripeHours` (hourly event summaries): both need
 *   Postgres around them, so the same `stripe` calls are made here with the same parameters;
 * - the errors the reporter classifies: Stripe's refusal of a duplicate identifier, 429, 5xx; and the
 *   other errors the stand-in answers (401, 404, parameter errors, idempotency_error).
 * Runs in Node (not workerd: ajv compiles validators with `new Function`), < 2 s.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type Stripe from "stripe";
import type { StripeStandIn } from "../../dev/stripe-standin";
import { createCustomer, ensureMeter } from "../../workers/shared/stripe";
import { stripeError } from "../support/stripe-error";
import { type ContractSession, startContractSession } from "./contract-session";
import { contractViolations, type Exchange, fixtureViolations, subset } from "./stripe-openapi";
import { packageVersions, typeFields } from "./stripe-package-types";

const uniq = () => crypto.randomUUID().slice(0, 8);
const HOUR_S = 3_600;

let session: ContractSession;
let standIn: StripeStandIn;
let client: Stripe;
let clientWith: ContractSession["clientWith"];
let conforming: ContractSession["conforming"];

before(async () => {
  session = await startContractSession();
  ({ standIn, client, clientWith, conforming } = session);
});

after(() => session.stop());

/** The `properties` of an object schema (the subset keeps Stripe's schemas as plain JSON). */
function propertiesOf(schema: unknown): Record<string, unknown> {
  const properties = (schema as { properties?: Record<string, unknown> } | null)?.properties;
  assert.ok(properties, "an object schema with properties");
  return properties;
}

async function customerAndMeter() {
  const customer = await client.customers.create({ name: `contract ${uniq()}` });
  const eventName = `contract_${uniq()}`;
  const meterId = await ensureMeter(client, eventName);
  return { customer: customer.id, eventName, meterId };
}

/** The meter event the billing reporter sends for one outbox row (stripe-reporter.ts `send`). */
const reporterEvent = (
  eventName: string,
  customer: string,
  rowId: string,
  hourMs: number,
  units: number,
) => ({
  event_name: eventName,
  identifier: rowId,
  timestamp: Math.floor(hourMs / 1000),
  payload: { stripe_customer_id: customer, value: String(units) },
});

describe(`Stripe contract (spec ${subset["x-source"].tag}, API ${subset.info.version})`, () => {
  it("tenant creation (createCustomer): the form body and the customer match Stripe's spec and example", async () => {
    const [created] = await conforming(["POST /v1/customers 200"], () =>
      createCustomer(client, { id: `ten_contract${uniq()}`, slug: `acme-${uniq()}`, name: "Acme" }),
    );
    assert.match(created?.requestBody ?? "", /metadata\[gateway_tenant_slug\]=acme-/); // what was checked
  });

  it("the meter lookup (ensureMeter): list, then create, as Stripe's spec says", async () => {
    await conforming(["GET /v1/billing/meters 200", "POST /v1/billing/meters 200"], () =>
      ensureMeter(client, `contract_${uniq()}`),
    );
  });

  it("the reporter's meter event, and Stripe's refusal of the same identifier (the reporter counts it as sent)", async () => {
    const { customer, eventName } = await customerAndMeter();
    const event = reporterEvent(eventName, customer, crypto.randomUUID(), Date.now() - HOUR_S * 1000, 7);
    const [, refused] = await conforming(
      ["POST /v1/billing/meter_events 200", "POST /v1/billing/meter_events 400"],
      async () => {
        await client.billing.meterEvents.create(event);
        await stripeError(client.billing.meterEvents.create(event));
      },
    );
    // What stripe-reporter.ts `classify` recognises as "already reported": no code, this message.
    const error = (refused?.responseBody as { error?: Record<string, unknown> } | undefined)?.error;
    assert.equal(error?.type, "invalid_request_error");
    assert.equal(error?.code, undefined);
    assert.equal(error?.message, `An event already exists with identifier ${event.identifier}.`);
  });

  it("reconciliation's hourly event summaries (auto-paged list)", async () => {
    const { customer, eventName, meterId } = await customerAndMeter();
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
    await client.billing.meterEvents.create(reporterEvent(eventName, customer, crypto.randomUUID(), hour, 3));
    const summaries: Stripe.Billing.MeterEventSummary[] = [];
    const [page] = await conforming(["GET /v1/billing/meters/{id}/event_summaries 200"], async () => {
      for await (const s of client.billing.meters.listEventSummaries(meterId, {
        customer,
        start_time: hour / 1000 - HOUR_S,
        end_time: hour / 1000 + HOUR_S,
        value_grouping_window: "hour",
      })) {
        summaries.push(s);
      }
    });
    assert.deepEqual(
      summaries.map((s) => [s.start_time, s.aggregated_value]),
      [[hour / 1000, 3]],
    );
    const data = (page?.responseBody as { data?: unknown[] } | undefined)?.data;
    assert.equal(data?.length, 1); // a summary object was checked, not just an empty list
  });

  it("the errors: 401, 404, missing and unknown parameters, idempotency_error, 429, 500", async () => {
    const { customer, eventName } = await customerAndMeter();
    const name = `errors ${uniq()}`;
    await conforming(
      [
        "POST /v1/customers 401",
        "GET /v1/customers/{customer} 200",
        "GET /v1/customers/{customer} 404",
        "GET /v1/billing/meters/{id} 404",
        "POST /v1/billing/meter_events 400",
        "POST /v1/customers 400",
        "POST /v1/customers 200",
        "POST /v1/customers 400",
        "POST /v1/customers 429",
        "POST /v1/billing/meter_events 500",
      ],
      async () => {
        await stripeError(clientWith("sk_test_").customers.create({ name }));
        await client.customers.retrieve(customer);
        await stripeError(client.customers.retrieve("cus_nobody"));
        await stripeError(client.billing.meters.retrieve("mtr_test_nobody"));
        await stripeError(
          client.billing.meterEvents.create({
            event_name: eventName,
            payload: { stripe_customer_id: customer },
          }),
        );
        await stripeError(client.customers.create({ name, bogus: "x" } as Stripe.CustomerCreateParams));
        await client.customers.create({ name }, { idempotencyKey: `idem-${name}` });
        await stripeError(client.customers.create({ name: `${name}!` }, { idempotencyKey: `idem-${name}` }));
        standIn.failNext(1, 429);
        await stripeError(client.customers.create({ name }));
        standIn.failNext(1, 500);
        await stripeError(
          client.billing.meterEvents.create(
            reporterEvent(eventName, customer, crypto.randomUUID(), Date.now(), 1),
          ),
        );
      },
      { badRequests: [5] }, // `bogus` is sent on purpose, to see the parameter_unknown answer
    );
  });

  it("accepts Stripe's own example objects (the schemas and validator setup are right)", () => {
    // Not the customer: its example carries a discount, a schema the subset prunes (the stand-in
    // always answers `discount: null`).
    // Of the schemas derived from the package's types (subset-from-package-types.ts), those whose
    // example objects match: the others differ where the package's spec tag is newer than the examples.
    for (const type of [
      "billing.meter",
      "billing.meter_event",
      "billing.meter_event_summary",
      "price",
      "plan",
      "event",
      "invoice",
      "line_item",
    ]) {
      assert.deepEqual(fixtureViolations(type), [], type);
    }
  });

  const pinned = packageVersions();
  it(`names the same fields as the pinned stripe package's types (spec ${pinned.specTag}, API ${pinned.apiVersion})`, () => {
    const schemaFields = (name: string) => Object.keys(propertiesOf(subset.components.schemas[name]));
    const bodyFields = (path: string, method: string) =>
      Object.keys(
        propertiesOf(
          subset.paths[path]?.[method]?.requestBody?.content["application/x-www-form-urlencoded"].schema ??
            null,
        ),
      );
    const queryFields = (path: string) =>
      (subset.paths[path]?.get?.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
    // Known differences, not wire fields of the vendored tag: `Customer.deleted` is the package's
    // marker telling a Customer from a DeletedCustomer; `CustomerCreateParams.validate` is in the
    // package's types only.
    const notOnTheWire = new Set(["Customer.deleted", "CustomerCreateParams.validate"]);
    const pairs: Array<[string, string, string[]]> = [
      ["resources/Customers.d.ts", "Customer", schemaFields("customer")],
      ["resources/Billing/Meters.d.ts", "Meter", schemaFields("billing.meter")],
      ["resources/Billing/MeterEvents.d.ts", "MeterEvent", schemaFields("billing.meter_event")],
      [
        "resources/Billing/MeterEventSummaries.d.ts",
        "MeterEventSummary",
        schemaFields("billing.meter_event_summary"),
      ],
      ["resources/Customers.d.ts", "CustomerCreateParams", bodyFields("/v1/customers", "post")],
      ["resources/Billing/Meters.d.ts", "MeterCreateParams", bodyFields("/v1/billing/meters", "post")],
      [
        "resources/Billing/MeterEvents.d.ts",
        "MeterEventCreateParams",
        bodyFields("/v1/billing/meter_events", "post"),
      ],
      ["resources/Billing/Meters.d.ts", "MeterListParams", queryFields("/v1/billing/meters")],
      [
        "resources/Billing/Meters.d.ts",
        "MeterListEventSummariesParams",
        queryFields("/v1/billing/meters/{id}/event_summaries"),
      ],
    ];
    for (const [file, name, spec] of pairs) {
      const types = typeFields(file, name).filter((field) => !notOnTheWire.has(`${name}.${field}`));
      assert.deepEqual([...types].sort(), [...spec].sort(), name);
      assert.ok(spec.length > 0, name);
    }
  });

  it("catches drift: a renamed field, a number for a string, an invented field, a bad request", async () => {
    const [sent] = await conforming(["POST /v1/customers 200"], () =>
      client.customers.create({ name: "drift" }),
    );
    assert.ok(sent);
    const body = sent.responseBody as Record<string, unknown>;
    const { name, ...withoutName } = body;
    const drifts: Array<[string, Exchange]> = [
      ["renamed", { ...sent, responseBody: { ...withoutName, full_name: name } }],
      ["number for string", { ...sent, responseBody: { ...body, name: 42 } }],
      ["invented", { ...sent, responseBody: { ...body, tenant: "acme" } }],
      ["bad request", { ...sent, requestBody: "name=x&nickname=y" }],
    ];
    for (const [label, drifted] of drifts) assert.notDeepEqual(contractViolations(drifted), [], label);
  });
});
