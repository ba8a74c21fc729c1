/**
 * Dunning as pure functions: Stripe's subscription status → signal, the tenant's state machine
 * (workers/billing/dunning.ts), and the grace-or-402 rule the tenant object applies at admission
 * (durable-objects/admission.ts). Time is a parameter.
 */
import { describe, expect, it } from "vitest";
import { type AdmissionStore, decideAdmission } from "../../durable-objects/admission";
import type { TenantConfig } from "../../durable-objects/limits";
import { type DunningState, nextDunningState, signalOf } from "../../workers/billing/dunning";

const NOW = Date.parse("2026-11-30T12:00:00Z");
const GRACE = 7 * 86_400_000;

const active: DunningState = {
  status: "active",
  statusReason: "operator",
  pastDueSince: null,
  graceUntil: null,
};
const pastDue: DunningState = {
  status: "past_due",
  statusReason: "billing",
  pastDueSince: NOW,
  graceUntil: NOW + GRACE,
};

describe("dunning state machine", () => {
  it("reads Stripe's subscription status as paid up, failing, unpaid, or nothing to say", () => {
    expect(["active", "trialing"].map(signalOf)).toEqual(["paid_up", "paid_up"]);
    expect(signalOf("past_due")).toBe("payment_failing");
    expect(["unpaid", "canceled", "incomplete_expired"].map(signalOf)).toEqual([
      "unpaid",
      "unpaid",
      "unpaid",
    ]);
    expect(["incomplete", "paused", "something_new"].map(signalOf)).toEqual([null, null, null]);
  });

  it("active → past_due on a failed payment, with the grace period from that instant", () => {
    expect(nextDunningState(active, "payment_failing", NOW, GRACE)).toEqual(pastDue);
  });

  it("never extends the grace: a repeated failure of a past-due tenant changes nothing", () => {
    expect(nextDunningState(pastDue, "payment_failing", NOW + 86_400_000, GRACE)).toBeNull();
  });

  it("past_due → suspended when unpaid or canceled, keeping since when; → active when paid, clearing it", () => {
    expect(nextDunningState(pastDue, "unpaid", NOW + 1, GRACE)).toEqual({ ...pastDue, status: "suspended" });
    expect(nextDunningState(active, "unpaid", NOW, GRACE)).toEqual({
      status: "suspended",
      statusReason: "billing",
      pastDueSince: NOW,
      graceUntil: null,
    });
    const suspended = { ...pastDue, status: "suspended" as const };
    for (const from of [pastDue, suspended]) {
      expect(nextDunningState(from, "paid_up", NOW + 2, GRACE)).toEqual({
        status: "active",
        statusReason: "billing",
        pastDueSince: null,
        graceUntil: null,
      });
    }
    expect(nextDunningState(active, "paid_up", NOW, GRACE)).toBeNull();
    expect(nextDunningState(pastDue, null, NOW, GRACE)).toBeNull();
  });

  it("never lifts or replaces a status the operator set", () => {
    for (const status of ["suspended", "past_due"] as const) {
      const manual: DunningState = { status, statusReason: "operator", pastDueSince: null, graceUntil: null };
      for (const signal of ["paid_up", "payment_failing", "unpaid"] as const)
        expect(nextDunningState(manual, signal, NOW, GRACE)).toBeNull();
    }
  });
});

describe("grace or 402, decided at admission", () => {
  const empty: AdmissionStore = {
    key: () => null,
    bucket: () => null,
    quota: () => null,
    idempotency: () => null,
    creditBalance: () => 0,
  };
  const config = (over: Partial<TenantConfig>): TenantConfig => ({
    version: 1,
    status: "past_due",
    limits: {
      burstCapacity: 10,
      refillTokens: 1,
      refillPeriodSeconds: 1,
      dailyQuota: null,
      monthlyQuota: null,
    },
    ...over,
  });
  const decide = (cfg: TenantConfig, now: number, door: "proxy" | "manage" = "proxy", write = false) =>
    decideAdmission(
      { keyId: "key_a", keyLimit: null, cost: 1, config: cfg, idempotency: null, door, write },
      cfg,
      empty,
      now,
    );

  it("admits a past-due tenant, flagged, until the last millisecond of the grace; refuses it from the end on", () => {
    const cfg = config({ pastDueSince: NOW, graceUntil: NOW + GRACE });
    const before = decide(cfg, NOW + GRACE - 1);
    expect(before).toMatchObject({ outcome: "admitted", pastDue: { since: NOW, graceUntil: NOW + GRACE } });
    expect(decide(cfg, NOW + GRACE - 1, "manage", true)).toMatchObject({ outcome: "admitted" });
    expect(decide(cfg, NOW + GRACE)).toEqual({
      outcome: "past_due",
      pastDue: { since: NOW, graceUntil: NOW + GRACE },
    });
    expect(decide(cfg, NOW + GRACE, "manage", true).outcome).toBe("past_due");
    expect(decide(cfg, NOW + GRACE, "manage", false).outcome).toBe("admitted");
  });

  it("refuses a past-due tenant without a grace (the operator's) at once; an active one carries no flag", () => {
    expect(decide(config({}), NOW).outcome).toBe("past_due");
    const activeDecision = decide(config({ status: "active", graceUntil: NOW + GRACE }), NOW);
    expect(activeDecision.outcome).toBe("admitted");
    expect(activeDecision).not.toHaveProperty("pastDue");
  });
});
