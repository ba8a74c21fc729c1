/**
 * The Stripe stand-in's control endpoints (dev/stripe/control.ts) from tests inside workerd: its
 * clock, a customer's payment outcome, the retry rules. The clock and the retry rules go back to
 * their defaults before every test (test/setup-each.ts resets what tests inject).
 */
import { STANDIN } from "./stripe-standin";

/** POSTs `body` as JSON to a control path; returns the status and the parsed answer. */
export async function standinControl(
  path: string,
  body: unknown = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(new URL(path, STANDIN), { method: "POST", body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The stand-in's now, in epoch seconds. */
export async function standinNow(): Promise<number> {
  const res = await fetch(new URL("/_standin/clock", STANDIN));
  return ((await res.json()) as { now: number }).now;
}

/** Moves the stand-in's clock forward to `epochSeconds` (and bills whatever that makes due). */
export async function advanceStandinTo(epochSeconds: number): Promise<void> {
  const { status, body } = await standinControl("/_standin/clock/advance", { to: epochSeconds });
  if (status !== 200) throw new Error(`clock advance answered ${status}: ${JSON.stringify(body)}`);
}

export async function setPaymentOutcome(customer: string, outcome: "succeed" | "fail"): Promise<void> {
  const { status, body } = await standinControl(`/_standin/customers/${customer}/payment_outcome`, {
    outcome,
  });
  if (status !== 200) throw new Error(`payment_outcome answered ${status}: ${JSON.stringify(body)}`);
}
