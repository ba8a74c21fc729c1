/**
 * The harness of the Stripe contract checks (stripe-contract*.ts): the stand-in in-process, every
 * call recorded on its way through `fetch`, the gateway's own Stripe client pointed at it, and
 * `conforming()`, which runs calls and asserts which Stripe operations they made and that each
 * request and answer conforms to Stripe's spec. A new check is a few lines:
 *
 *   await session.conforming(["GET /v1/invoices/{invoice} 200"], () => client.invoices.retrieve(id));
 */
import assert from "node:assert/strict";
import type Stripe from "stripe";
import { type StripeStandIn, startStripeStandIn } from "../../dev/stripe-standin";
import { stripeClient } from "../../workers/shared/stripe";
import { contractViolations, type Exchange, operationOf, recordExchanges } from "./stripe-openapi";

export interface ContractSession {
  standIn: StripeStandIn;
  /** The gateway's own client (workers/shared/stripe.ts) with the contract's test key. */
  client: Stripe;
  /** The gateway's own client with another key. */
  clientWith(key: string): Stripe;
  /**
   * Runs `calls`, then asserts they made exactly `expected` ("METHOD /template status") and that each
   * conforms; `badRequests`: indexes of calls that send a bad request on purpose (answer checked only).
   */
  conforming(
    expected: string[],
    calls: () => Promise<unknown>,
    options?: { badRequests?: number[] },
  ): Promise<Exchange[]>;
  stop(): Promise<void>;
}

export async function startContractSession(key = "sk_test_contract"): Promise<ContractSession> {
  const standIn = await startStripeStandIn();
  const recorder = recordExchanges(); // before any client is built: the fetch client keeps the fetch it sees
  const clientWith = (k: string): Stripe => {
    const stripe = stripeClient({ STRIPE_SECRET_KEY: k, STRIPE_API_URL: standIn.url });
    assert.ok(stripe);
    return stripe;
  };
  return {
    standIn,
    client: clientWith(key),
    clientWith,
    async conforming(expected, calls, options = {}) {
      const start = recorder.exchanges.length;
      await calls();
      const made = recorder.exchanges.slice(start);
      assert.deepEqual(
        made.map((x) => `${operationOf(x.method, new URL(x.url).pathname)} ${x.status}`),
        expected,
      );
      made.forEach((exchange, i) => {
        const request = !options.badRequests?.includes(i);
        assert.deepEqual(contractViolations(exchange, { request }), [], `${exchange.method} ${exchange.url}`);
      });
      return made;
    },
    async stop() {
      recorder.stop();
      await standIn.stop();
    },
  };
}
