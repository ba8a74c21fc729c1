/**
 * The portal's Keys page (`/portal/keys`), driven as a browser would (WebClient) through the
 * Worker's real entry: keys created there are shown once and work through the gateway at once; a
 * revocation, rotation or allowlist edit made there applies on the very next request, whatever KV
 * still says; another tenant's key ids are "not found" and leave the key untouched; every form needs
 * the session's CSRF value; tenant-supplied strings are escaped; the tenant's status gates changes
 * as the tenant API's door does.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { tenants } from "../../schema";
import { hashKey } from "../../workers/shared/api-keys";
import { keyKvName } from "../../workers/shared/auth-context";
import { forgetKey } from "../../workers/shared/key-store";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { admin, bearer, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { csrfOf, portalSession, type WebClient } from "../support/web";

const clock = controlledClock();

interface KeyOut {
  id: string;
  name: string | null;
  env: string;
  ipAllowlist: string[];
  revokedAt: string | null;
  expiresAt: string | null;
}

/** A signed-in browser on the keys page, and the CSRF value its forms carry. */
async function keysPage(tenantId: string): Promise<{ web: WebClient; csrf: string }> {
  const web = await portalSession(tenantId);
  return { web, csrf: csrfOf(await web.page("/portal/keys")) };
}

/** The plaintext a page shows once, in `<code id="new-key">`. */
function shownKey(html: string): string {
  const match = /<code id="new-key">([^<]+)<\/code>/.exec(html);
  if (!match?.[1]) throw new Error(`no new key on the page: ${html}`);
  return match[1];
}

/** The id of the row showing `prefix…last4` of `key`. */
function rowIdOf(html: string, key: string): string {
  const shown = `${key.slice(0, key.indexOf("_", 3) + 5)}…${key.slice(-4)}`;
  const rows = html.split("<tr ").filter((r) => r.includes(shown));
  const match = /data-key-id="(key_[^"]+)"/.exec(rows[0] ?? "");
  if (rows.length !== 1 || !match?.[1]) throw new Error(`no single row for ${shown}`);
  return match[1];
}

async function createInPortal(
  web: WebClient,
  csrf: string,
  form: Record<string, string>,
): Promise<{ key: string; id: string; html: string }> {
  const res = await web.post("/portal/keys", { _csrf: csrf, ...form });
  const html = await res.text();
  expect(res.status, html).toBe(201);
  const key = shownKey(html);
  return { key, id: rowIdOf(html, key), html };
}

const call = (key: string, path: string, ip?: string) =>
  gateway(path, { headers: { ...bearer(key), ...(ip ? { "cf-connecting-ip": ip } : {}) } });

const keyOf = async (id: string) => expectJson<KeyOut>(await admin("GET", `/admin/v1/keys/${id}`), 200);

/** Puts the key's KV record from before a change back, as another location would still see it. */
async function keepStale(key: string): Promise<() => Promise<void>> {
  const hash = await hashKey(key);
  const stale = await env.API_KEYS.get(keyKvName(hash));
  if (stale === null) throw new Error("no KV record");
  return async () => {
    await env.API_KEYS.put(keyKvName(hash), stale);
    forgetKey(hash);
  };
}

describe("creating keys in the portal", () => {
  it("creates a live and a test key, shows each plaintext once, lists prefix…last4 only, and both work at once", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    const marker = uniq();

    const live = await createInPortal(web, csrf, { name: "server", env: "live" });
    expect(live.key).toMatch(/^gw_live_/);
    expect(live.html).toContain('data-copy="new-key"');
    expect(live.html).toContain("it won&#39;t be shown again");
    const test = await createInPortal(web, csrf, { name: "laptop", env: "test", role: "admin" });
    expect(test.key).toMatch(/^gw_test_/);

    const list = await web.page("/portal/keys");
    for (const k of [live, test, { key: t.key }]) {
      expect(list).not.toContain(k.key);
      expect(list).toContain(`${k.key.slice(0, 12)}…${k.key.slice(-4)}`);
    }
    expect(list).not.toContain('id="new-key"');
    // Newest first: the test key, the live key, the tenant's first key.
    const order = [...list.matchAll(/data-key-id="(key_[^"]+)"/g)].map((m) => m[1]);
    expect(order).toEqual([test.id, live.id, t.keyId]);

    expect(await keyOf(live.id)).toMatchObject({ name: "server", env: "live", revokedAt: null });
    expect(await keyOf(test.id)).toMatchObject({ name: "laptop", env: "test" });
    expect((await call(live.key, `/v1/${marker}/live`)).status).toBe(200);
    const sandbox = await call(test.key, `/v1/${marker}/test`);
    expect(sandbox.status).toBe(200);
    expect((await sandbox.json<{ path: string }>()).path).toContain("/sandbox/");
  });

  it("refuses bad input with the form again and a notice (400), keeping what was typed, escaped", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    const cases: [Record<string, string>, string][] = [
      [{ name: "x", env: "prod" }, "Environment:"],
      [{ name: "x", env: "live", expiresOn: "2020-01-01" }, "Expires on: must be in the future"],
      [
        { name: "x", env: "live", ipAllowlist: "10.0.0.0/8\n10.0.0.0/33" },
        "&quot;10.0.0.0/33&quot; must be an IPv4",
      ],
      [{ name: "<b>x</b>", env: "live", ipAllowlist: "<script>alert(1)</script>" }, "&lt;script&gt;alert(1)"],
    ];
    for (const [form, notice] of cases) {
      const res = await web.post("/portal/keys", { _csrf: csrf, ...form });
      const html = await res.text();
      expect(res.status, html).toBe(400);
      expect(html).toContain(notice);
      expect(html).toContain('id="create-key"');
      expect(html).not.toContain('id="new-key"');
      expect(html).not.toContain("<script>alert(1)");
      expect(html).not.toContain("<b>x</b>");
    }
    // Only the tenant's first key exists.
    const keys = await expectJson<{ data: unknown[] }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/keys`),
      200,
    );
    expect(keys.data).toHaveLength(1);
  });

  it("escapes a key's name wherever the page shows it", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    const name = `<script>alert("k")</script> & <img src=x onerror=alert(1)>`;
    await createInPortal(web, csrf, { name, env: "live" });
    const html = await web.page("/portal/keys");
    expect(html).toContain("&lt;script&gt;alert(&quot;k&quot;)&lt;/script&gt; &amp; &lt;img src=x");
    expect(html).not.toContain("<script>alert");
    expect(html).not.toContain("<img src=x");
  });
});

describe("changing keys in the portal", () => {
  it("revokes a key: the very next request with it is 401, whatever KV and the isolate still hold", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    const { key, id } = await createInPortal(web, csrf, { name: "leaked", env: "live" });
    expect((await call(key, `/v1/${uniq()}`)).status).toBe(200);
    const restore = await keepStale(key);

    const res = await web.post(`/portal/keys/${id}/revoke`, { _csrf: csrf });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/portal/keys?done=revoked");
    await restore();
    const after = await call(key, `/v1/${uniq()}`);
    expect(after.status).toBe(401);
    expect((await keyOf(id)).revokedAt).not.toBeNull();

    const page = await web.page("/portal/keys?done=revoked");
    expect(page).toContain("The key is revoked.");
    const row = page.split("<tr ").find((r) => r.includes(id)) ?? "";
    expect(row).toContain(">revoked<");
    expect(row).not.toContain(">Revoke<");
    // The tenant's other key is untouched.
    expect((await call(t.key, `/v1/${uniq()}`)).status).toBe(200);
  });

  it("rotates with a grace period: the new key works at once (shown once), the old one until the grace ends", async () => {
    const t = await seedTenant();
    const now = clock.set(Date.now());
    const { web, csrf } = await keysPage(t.tenantId);
    const res = await web.post(`/portal/keys/${t.keyId}/rotate`, { _csrf: csrf, gracePeriodSeconds: "3600" });
    const html = await res.text();
    expect(res.status, html).toBe(201);
    const fresh = shownKey(html);
    expect(fresh).toMatch(/^gw_live_/);
    expect(fresh).not.toBe(t.key);
    const graceEnd = now + 3_600_000;
    expect(html).toContain(
      `The old key keeps working until ${new Date(graceEnd).toISOString().slice(0, 10)}`,
    );
    const oldRow = html.split("<tr ").find((r) => r.includes(t.keyId)) ?? "";
    expect(oldRow).toContain("rotating until");
    expect((await keyOf(t.keyId)).expiresAt).toBe(new Date(graceEnd).toISOString());

    expect((await call(fresh, `/v1/${uniq()}`)).status).toBe(200);
    clock.set(graceEnd - 1);
    expect((await call(t.key, `/v1/${uniq()}`)).status).toBe(200);
    clock.set(graceEnd);
    expect((await call(t.key, `/v1/${uniq()}`)).status).toBe(401);
    expect((await call(fresh, `/v1/${uniq()}`)).status).toBe(200);
    expect(await web.page("/portal/keys")).not.toContain(fresh);
  });

  it("refuses a grace period outside 0..30 days with 400, rotating nothing", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    for (const grace of [String(31 * 86_400), "-1", "soon"]) {
      const res = await web.post(`/portal/keys/${t.keyId}/rotate`, {
        _csrf: csrf,
        gracePeriodSeconds: grace,
      });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("Grace period:");
    }
    expect((await keyOf(t.keyId)).expiresAt).toBeNull();
  });

  it("edits the IP allowlist: applies on the next request (403 ip_not_allowed elsewhere); a bad CIDR changes nothing (400)", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    expect((await call(t.key, `/v1/${uniq()}`, "198.51.100.1")).status).toBe(200);
    const restore = await keepStale(t.key);

    const saved = await web.post(`/portal/keys/${t.keyId}/allowlist`, {
      _csrf: csrf,
      ipAllowlist: "203.0.113.0/24\n2001:db8::/32",
    });
    expect(saved.status).toBe(303);
    expect(saved.headers.get("location")).toBe("/portal/keys?done=allowlist");
    await restore();
    const refused = await call(t.key, `/v1/${uniq()}`, "198.51.100.1");
    expect(refused.status).toBe(403);
    expect((await refused.json<{ code: string }>()).code).toBe("ip_not_allowed");
    expect((await call(t.key, `/v1/${uniq()}`, "203.0.113.7")).status).toBe(200);
    expect((await call(t.key, `/v1/${uniq()}`, "2001:db8::1")).status).toBe(200);
    expect((await keyOf(t.keyId)).ipAllowlist).toEqual(["203.0.113.0/24", "2001:db8::/32"]);

    const bad = await web.post(`/portal/keys/${t.keyId}/allowlist`, {
      _csrf: csrf,
      ipAllowlist: "198.51.100.0/24, 300.1.1.1",
    });
    const html = await bad.text();
    expect(bad.status).toBe(400);
    expect(html).toContain(
      "IP allowlist: &quot;300.1.1.1&quot; must be an IPv4 or IPv6 address or CIDR block",
    );
    // The form shows what was typed again, to correct it.
    expect(html).toContain("198.51.100.0/24, 300.1.1.1</textarea>");
    expect((await keyOf(t.keyId)).ipAllowlist).toEqual(["203.0.113.0/24", "2001:db8::/32"]);
    expect((await call(t.key, `/v1/${uniq()}`, "198.51.100.1")).status).toBe(403);

    // Emptied: any address again.
    expect(
      (await web.post(`/portal/keys/${t.keyId}/allowlist`, { _csrf: csrf, ipAllowlist: "" })).status,
    ).toBe(303);
    expect((await call(t.key, `/v1/${uniq()}`, "198.51.100.1")).status).toBe(200);
  });
});

describe("keys page security", () => {
  it("answers 404 for another tenant's key through revoke, rotate and allowlist, and leaves the key untouched", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const { web, csrf } = await keysPage(a.tenantId);
    const before = await keyOf(b.keyId);
    for (const [action, form] of [
      ["revoke", {}],
      ["rotate", { gracePeriodSeconds: "0" }],
      ["allowlist", { ipAllowlist: "203.0.113.0/24" }],
    ] as const) {
      for (const id of [b.keyId, "key_doesnotexist", "key_%00", "x".repeat(300)]) {
        const res = await web.post(`/portal/keys/${id}/${action}`, { _csrf: csrf, ...form });
        const html = await res.text();
        expect(res.status, `${action} ${id}`).toBe(404);
        expect(html).toContain("No such key.");
        expect(html).not.toContain(b.slug);
        expect(html).not.toContain('id="new-key"');
      }
    }
    expect(await keyOf(b.keyId)).toEqual(before);
    const bKeys = await expectJson<{ data: unknown[] }>(
      await admin("GET", `/admin/v1/tenants/${b.tenantId}/keys`),
      200,
    );
    expect(bKeys.data).toHaveLength(1);
    expect((await call(b.key, `/v1/${uniq()}`, "198.51.100.1")).status).toBe(200);
    // A's list never shows B's key.
    expect(await web.page("/portal/keys")).not.toContain(b.keyId);
  });

  it("refuses every form without the session's CSRF value, or from another site (403), changing nothing", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    const posts: [string, Record<string, string>][] = [
      ["/portal/keys", { name: "csrf", env: "live" }],
      [`/portal/keys/${t.keyId}/revoke`, {}],
      [`/portal/keys/${t.keyId}/rotate`, { gracePeriodSeconds: "0" }],
      [`/portal/keys/${t.keyId}/allowlist`, { ipAllowlist: "203.0.113.0/24" }],
    ];
    for (const [path, form] of posts) {
      expect((await web.post(path, form)).status, path).toBe(403);
      expect((await web.post(path, { ...form, _csrf: "0".repeat(64) })).status, path).toBe(403);
      const crossSite = await web.post(
        path,
        { ...form, _csrf: csrf },
        { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      );
      expect(crossSite.status, path).toBe(403);
    }
    expect(await keyOf(t.keyId)).toMatchObject({ revokedAt: null, expiresAt: null, ipAllowlist: [] });
    const keys = await expectJson<{ data: unknown[] }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/keys`),
      200,
    );
    expect(keys.data).toHaveLength(1);
  });

  it("gates changes by the tenant's status as the API's door: suspended 403, past due after its grace 402; revoking stays allowed", async () => {
    const t = await seedTenant();
    const { web, csrf } = await keysPage(t.tenantId);
    const setStatus = (set: Partial<typeof tenants.$inferInsert>) =>
      withDb((db) => db.update(tenants).set(set).where(eq(tenants.id, t.tenantId)));

    await setStatus({
      status: "past_due",
      pastDueSince: new Date(Date.now() - 86_400_000),
      graceUntil: new Date(Date.now() + 3_600_000),
    });
    const inGrace = await web.post("/portal/keys", { _csrf: csrf, name: "grace", env: "live" });
    expect(inGrace.status).toBe(201);

    await setStatus({ graceUntil: new Date(Date.now() - 1000) });
    for (const [path, form] of [
      ["/portal/keys", { name: "late", env: "live" }],
      [`/portal/keys/${t.keyId}/rotate`, { gracePeriodSeconds: "0" }],
      [`/portal/keys/${t.keyId}/allowlist`, { ipAllowlist: "203.0.113.0/24" }],
    ] as const) {
      const res = await web.post(path, { _csrf: csrf, ...form });
      expect(res.status, path).toBe(402);
      expect(await res.text()).toContain("Pay the open invoice to continue.");
    }
    expect(await web.page("/portal/keys")).not.toContain('id="create-key"');

    await setStatus({ status: "suspended", pastDueSince: null, graceUntil: null });
    const suspended = await web.post("/portal/keys", { _csrf: csrf, name: "no", env: "test" });
    expect(suspended.status).toBe(403);
    expect(await suspended.text()).toContain("This account is suspended.");
    // Revoking a (leaked) key is always allowed.
    expect((await web.post(`/portal/keys/${t.keyId}/revoke`, { _csrf: csrf })).status).toBe(303);
    expect((await keyOf(t.keyId)).revokedAt).not.toBeNull();
    const keys = await expectJson<{ data: unknown[] }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/keys`),
      200,
    );
    expect(keys.data).toHaveLength(2);
  });
});
