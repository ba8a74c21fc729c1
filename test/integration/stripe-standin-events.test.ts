/**
 * The Stripe stand-in's `GET /v1/events` through the real `stripe` package inside workerd: newest
 * first, Stripe's cursors, `type` (with `*`), `types[]` and `created` filters, and its refusals.
 * The event log is shared by every test file, so each check starts from the newest event before it.
 */
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { stripeError } from "../support/stripe-error";
import { standinStripe } from "../support/stripe-standin";

const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

async function newestEventId(): Promise<string | undefined> {
  return (await stripe.events.list({ limit: 1 })).data[0]?.id;
}

describe("Stripe stand-in: events list", () => {
  it("lists events newest first with Stripe's cursors, type, types[] and created filters", async () => {
    const marker = await newestEventId();
    const customers = [];
    for (let i = 0; i < 3; i++) customers.push(await stripe.customers.create({ name: `e-${i}` }));
    const mine = (await stripe.events.list({ limit: 100, ending_before: marker })).data;
    expect(mine.map((e) => [e.type, (e.data.object as Stripe.Customer).id])).toEqual(
      [...customers].reverse().map((c) => ["customer.created", c.id]),
    );
    const [c3, c2, c1] = mine as Stripe.Event[];

    const page1 = await stripe.events.list({ limit: 2 });
    expect(page1.data.map((e) => e.id)).toEqual([c3?.id, c2?.id]);
    expect(page1.has_more).toBe(true);
    const page2 = await stripe.events.list({ limit: 2, starting_after: c2?.id });
    expect(page2.data[0]?.id).toBe(c1?.id);
    const before = await stripe.events.list({ limit: 1, ending_before: c1?.id });
    expect(before.data.map((e) => e.id)).toEqual([c2?.id]);

    expect((await stripe.events.list({ limit: 3, types: ["customer.created"] })).data).toEqual(mine);
    expect((await stripe.events.list({ limit: 3, type: "customer.*" })).data).toEqual(mine);
    expect(
      (await stripe.events.list({ limit: 3, type: "invoice.paid", ending_before: c1?.id })).data,
    ).toEqual([]);
    // (Tests of other files may have moved the clock ahead: only events after c1 are compared by time.)
    const [from, to] = [c1?.created ?? 0, c3?.created ?? 0];
    const since = (created: Stripe.RangeQueryParam) =>
      stripe.events.list({ limit: 3, created, ending_before: c1?.id }).then((l) => l.data.map((e) => e.id));
    expect(await since({ gte: from, lte: to })).toEqual([c3?.id, c2?.id]);
    expect(await since({ gt: to })).toEqual([]);
    expect(await since({ lt: from })).toEqual([]);
    expect(await stripe.events.retrieve(c2?.id as string)).toEqual(c2);

    const refusals = await Promise.all([
      stripeError(stripe.events.list({ limit: 0 })),
      stripeError(stripe.events.list({ type: "a", types: ["b"] })),
      stripeError(stripe.events.list({ created: { after: 1 } } as unknown as Stripe.EventListParams)),
      stripeError(stripe.events.retrieve("evt_nothing")),
    ]);
    expect(refusals.map((e) => [e.statusCode, e.param ?? e.code])).toEqual([
      [400, "limit"],
      [400, "types"],
      [400, "created[after]"],
      [404, "id"],
    ]);
  });
});
