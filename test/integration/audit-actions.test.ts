/**
 * The action log: every change made through the admin API, the tenant API, the portal and the
 * console lands in the audit trail once — who, what, the before/after of the fields it changed,
 * request id, client IP, user agent — on the tenant's hash chain (or the operator's), unbroken.
 * Failures and idempotent replays record nothing.
 */
import { env } from "cloudflare:workers";
import { and, asc, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { type AuditAction, auditActions, webSessions } from "../../schema";
import { type ChainedEntry, GENESIS, OPERATOR_CHAIN, verifyEntries } from "../../workers/audit/chain";
import { mintCode } from "../../workers/web/portal-codes";
import { withDb } from "../support/db";
import { admin, bearer, createPlan, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { consoleSession, csrfOf, portalSession, WebClient } from "../support/web";

/** A chain's action entries, oldest first. */
const entriesOf = (chain: string) =>
  withDb((db) =>
    db.select().from(auditActions).where(eq(auditActions.chain, chain)).orderBy(asc(auditActions.seq)),
  );

/** The entries of a chain with an action. */
const withAction = async (chain: string, action: string) =>
  (await entriesOf(chain)).filter((e) => e.action === action);

/** An entry as an export carries it, for `verifyEntries`. */
const chained = (e: AuditAction): ChainedEntry => ({ ...e, occurredAt: e.occurredAt.toISOString() });

const targets = (e: AuditAction) => e.targets as Array<{ type: string; id: string }>;
const changes = (e: AuditAction) => e.changes as Record<string, { before: unknown; after: unknown }>;

/** An admin API call from a given address and browser. */
function adminFrom(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  return gateway(path, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// The first request of a file loads the Worker's whole bundle: not in the first test's time budget.
beforeAll(async () => {
  await createPlan();
});

describe("the admin API's changes", () => {
  it("a key revocation records the admin, the key, revokedAt before/after, request id, IP and user agent", async () => {
    const t = await seedTenant();
    const ua = `audit-test/${uniq()} ${"x".repeat(600)}`;
    const res = await adminFrom("DELETE", `/admin/v1/keys/${t.keyId}`, {
      "cf-connecting-ip": "203.0.113.7",
      "user-agent": ua,
    });
    const key = await expectJson<{ revokedAt: string }>(res, 200);

    const [entry, ...more] = await withAction(t.tenantId, "key.revoke");
    expect(more).toEqual([]);
    expect(entry).toMatchObject({
      chain: t.tenantId,
      actorType: "admin",
      actorId: "admin_token",
      action: "key.revoke",
      requestId: res.headers.get("x-request-id"),
      clientIp: "203.0.113.7",
      userAgent: ua.slice(0, 512),
    });
    expect(targets(entry as AuditAction)).toEqual([{ type: "key", id: t.keyId }]);
    expect(changes(entry as AuditAction)).toEqual({ revokedAt: { before: null, after: key.revokedAt } });
  });

  it("a tenant's plan change records the plan ids before and after", async () => {
    const t = await seedTenant();
    const next = await createPlan();
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { planId: next.id }), 200);

    const [entry] = await withAction(t.tenantId, "tenant.update");
    expect(entry?.actorType).toBe("admin");
    expect(targets(entry as AuditAction)).toEqual([{ type: "tenant", id: t.tenantId }]);
    expect(changes(entry as AuditAction)).toEqual({ planId: { before: t.plan.id, after: next.id } });
  });

  it("operator-wide changes (a plan made, a plan changed) go to the operator's chain", async () => {
    const plan = await createPlan();
    await expectJson(await admin("PATCH", `/admin/v1/plans/${plan.id}`, { dailyQuota: 500 }), 200);

    const mine = (await entriesOf(OPERATOR_CHAIN)).filter((e) => targets(e)[0]?.id === plan.id);
    expect(mine.map((e) => e.action)).toEqual(["plan.create", "plan.update"]);
    expect(changes(mine[0] as AuditAction).name).toEqual({ before: null, after: plan.name });
    expect(changes(mine[1] as AuditAction)).toEqual({ dailyQuota: { before: null, after: 500 } });
  });

  it("a refused (4xx) change records nothing", async () => {
    const t = await seedTenant();
    const before = await entriesOf(t.tenantId);
    const bad = await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { status: "gone" });
    expect(bad.status).toBe(400);
    const gone = await admin("DELETE", `/admin/v1/keys/key_${uniq()}nothing`);
    expect(gone.status).toBe(404);
    const badKey = await gateway("/gateway/v1/keys", {
      method: "POST",
      headers: { ...bearer(t.key), "content-type": "application/json" },
      body: JSON.stringify({ env: "nowhere" }),
    });
    expect(badKey.status).toBe(400);

    expect(await entriesOf(t.tenantId)).toEqual(before);
    const ids = [bad, gone, badKey].map((r) => r.headers.get("x-request-id") ?? "");
    const recorded = await withDb((db) =>
      db
        .select()
        .from(auditActions)
        .where(eq(auditActions.requestId, ids[1] as string)),
    );
    expect(recorded).toEqual([]);
  });

  it("an idempotent POST replayed records one entry, not two", async () => {
    const t = await seedTenant();
    const idem = `audit-${uniq()}`;
    const once = () =>
      adminFrom("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { "idempotency-key": idem }, { name: "x" });
    const first = await expectJson<{ id: string }>(await once(), 201);
    const again = await once();
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await expectJson<{ id: string }>(again, 201)).id).toBe(first.id);

    const entries = await entriesOf(t.tenantId);
    expect(entries.map((e) => e.action)).toEqual(["tenant.create", "key.create"]);
    expect(targets(entries[1] as AuditAction)).toEqual([{ type: "key", id: first.id }]);
  });
});

describe("the tenant API's changes", () => {
  it("a key made with a tenant key records that key as the actor, and never the new key's plaintext", async () => {
    const t = await seedTenant();
    const made = await expectJson<{ id: string; key: string; prefix: string }>(
      await gateway("/gateway/v1/keys", {
        method: "POST",
        headers: { ...bearer(t.key), "content-type": "application/json", "cf-connecting-ip": "198.51.100.4" },
        body: JSON.stringify({ name: "ci", env: "test" }),
      }),
      201,
    );

    const [entry] = await withAction(t.tenantId, "key.create");
    expect(entry).toMatchObject({ actorType: "key", actorId: t.keyId, clientIp: "198.51.100.4" });
    expect(targets(entry as AuditAction)).toEqual([{ type: "key", id: made.id }]);
    expect(changes(entry as AuditAction)).toMatchObject({
      prefix: { before: null, after: made.prefix },
      name: { before: null, after: "ci" },
      env: { before: null, after: "test" },
    });
    expect(JSON.stringify(entry)).not.toContain(made.key);
  });
});

describe("the web faces' changes", () => {
  it("a portal sign-in and a key revoked in the portal record the portal session as the actor", async () => {
    const t = await seedTenant();
    const web = await portalSession(t.tenantId);
    const csrf = csrfOf(await web.page("/portal/keys"));
    const res = await web.post(`/portal/keys/${t.keyId}/revoke`, { _csrf: csrf });
    expect(res.status).toBe(303);

    const [session] = await withDb((db) =>
      db.select().from(webSessions).where(eq(webSessions.tenantId, t.tenantId)),
    );
    const entries = await entriesOf(t.tenantId);
    const signIn = entries.find((e) => e.action === "session.create");
    expect(signIn).toMatchObject({ actorType: "portal", actorId: session?.id });
    expect(targets(signIn as AuditAction)).toEqual([{ type: "web_session", id: session?.id }]);
    const revoke = entries.find((e) => e.action === "key.revoke");
    expect(revoke).toMatchObject({ actorType: "portal", actorId: session?.id, chain: t.tenantId });
    expect(changes(revoke as AuditAction).revokedAt?.before).toBeNull();
  });

  it("a console sign-in goes to the operator's chain; a console plan change records before/after", async () => {
    const t = await seedTenant();
    const next = await createPlan();
    const web = await consoleSession();
    const page = `/console/tenants/${t.tenantId}`;
    const res = await web.post(`${page}/plan`, { _csrf: csrfOf(await web.page(page)), planId: next.id });
    expect(res.status).toBe(303);

    const [entry] = await withAction(t.tenantId, "tenant.update");
    expect(entry?.actorType).toBe("console");
    expect(changes(entry as AuditAction)).toEqual({ planId: { before: t.plan.id, after: next.id } });
    const signIn = await withDb((db) =>
      db
        .select()
        .from(auditActions)
        .where(and(eq(auditActions.chain, OPERATOR_CHAIN), eq(auditActions.actorId, entry?.actorId ?? ""))),
    );
    expect(signIn.map((e) => [e.action, e.actorType])).toEqual([["session.create", "console"]]);

    // A refused form (a plan that does not exist) is a 4xx page: nothing recorded.
    const refused = await web.post(`${page}/plan`, {
      _csrf: csrfOf(await web.page(page)),
      planId: "plan_nope",
    });
    expect(refused.status).toBe(400);
    expect((await entriesOf(t.tenantId)).map((e) => e.action)).toEqual(["tenant.create", "tenant.update"]);
  });
});

describe("sign-ins and sign-outs", () => {
  it("a sign-up records the tenant made and the session started, both by the new session; logout revokes it", async () => {
    // The sign-up plan (vitest.config.ts); 409 when another file of the shared database made it.
    const signupPlan = await admin("POST", "/admin/v1/plans", {
      name: "signup-default",
      burstCapacity: 1000,
      refillTokens: 1000,
      refillPeriodSeconds: 1,
      entitlements: ["api"],
    });
    expect([201, 409]).toContain(signupPlan.status);
    const email = `audit-${uniq()}@example.com`;
    const { code } = await withDb((db) => mintCode(db, { purpose: "signup", tenantId: null, email }));
    const web = new WebClient();
    expect((await web.post("/portal/enter", { code })).status).toBe(200);

    const [session] = await withDb((db) => db.select().from(webSessions).where(eq(webSessions.email, email)));
    const tenantId = session?.tenantId ?? "";
    const made = await entriesOf(tenantId);
    expect(made.map((e) => [e.action, e.actorType, e.actorId])).toEqual([
      ["tenant.create", "portal", session?.id],
      ["session.create", "portal", session?.id],
    ]);
    expect(changes(made[0] as AuditAction).email).toEqual({ before: null, after: email });

    const out = await web.post("/portal/logout", { _csrf: csrfOf(await web.page("/portal")) });
    expect(out.status).toBe(200);
    const [revoked] = await withAction(tenantId, "session.revoke");
    expect(revoked).toMatchObject({ actorType: "portal", actorId: session?.id, seq: 3 });
  });
});

describe("the chain", () => {
  it("links a tenant's entries (each prev_hash the previous hash) and verifies; an edited row breaks it", async () => {
    const t = await seedTenant();
    await expectJson(await admin("PATCH", `/admin/v1/tenants/${t.tenantId}`, { name: "Renamed" }), 200);
    await expectJson(await admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, {}), 201);
    await expectJson(await admin("DELETE", `/admin/v1/keys/${t.keyId}`), 200);

    const entries = await entriesOf(t.tenantId);
    expect(entries.map((e) => e.action)).toEqual([
      "tenant.create",
      "tenant.update",
      "key.create",
      "key.revoke",
    ]);
    expect(entries[0]?.prevHash).toBe(GENESIS);
    for (let i = 1; i < entries.length; i++) expect(entries[i]?.prevHash).toBe(entries[i - 1]?.hash);
    expect(await verifyEntries("action", entries.map(chained), { [t.tenantId]: GENESIS })).toMatchObject({
      ok: true,
      entries: 4,
    });

    const edited = entries.map(chained);
    edited[1] = { ...(edited[1] as ChainedEntry), actorId: "someone_else" } as ChainedEntry;
    expect(await verifyEntries("action", edited)).toMatchObject({
      ok: false,
      brokenAt: { chain: t.tenantId, seq: 2 },
    });
  });

  it("20 concurrent changes to one tenant take seqs 2..21 with no gap", async () => {
    const t = await seedTenant();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, {})),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));

    const entries = await entriesOf(t.tenantId);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(await verifyEntries("action", entries.map(chained), { [t.tenantId]: GENESIS })).toMatchObject({
      ok: true,
    });
  });
});
