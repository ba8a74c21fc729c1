/**
 * The portal's Webhooks page (`/portal/webhooks`), driven as a browser would (WebClient) through the
 * Worker's real entry: an endpoint added there shows its secret once and is listed; the SSRF guard's
 * refusal comes back in the form (4xx); a test send shows on the endpoint's page; disable, enable and
 * delete change the row; an endpoint the gateway disabled is announced with its reason; another
 * tenant's ids are "not found" on every route; every form needs the CSRF value; every change lands
 * in the audit trail with the portal session as actor.
 */
import { env } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditActions, tenants, webhookDeliveries, webhookEndpoints, webhookEvents } from "../../schema";
import { newId } from "../../workers/shared/ids";
import { withDb } from "../support/db";
import { BASE, seedTenant, uniq } from "../support/gateway";
import { csrfOf, portalSession, type WebClient } from "../support/web";

/** A receiver URL the test env accepts (http on 127.0.0.1, WEBHOOK_ALLOW_LOCALHOST=true). */
const receiver = () => `${env.ORIGIN_URL}/hooks/${uniq()}`;

/** A signed-in browser on the webhooks page, and the CSRF value its forms carry. */
async function webhooksPage(tenantId: string): Promise<{ web: WebClient; csrf: string }> {
  const web = await portalSession(tenantId);
  return { web, csrf: csrfOf(await web.page("/portal/webhooks")) };
}

/** The secret a page shows once, in `<code id="new-secret">`. */
function shownSecret(html: string): string {
  const match = /<code id="new-secret">([^<]+)<\/code>/.exec(html);
  if (!match?.[1]) throw new Error(`no new secret on the page: ${html}`);
  return match[1];
}

const endpointsOf = (tenantId: string) =>
  withDb((db) => db.select().from(webhookEndpoints).where(eq(webhookEndpoints.tenantId, tenantId)));

/** Adds an endpoint through the form; returns its row, the secret shown and the page. */
async function addInPortal(
  web: WebClient,
  csrf: string,
  tenantId: string,
  form: Record<string, string> = {},
) {
  const url = receiver();
  const res = await web.post("/portal/webhooks", { _csrf: csrf, url, ...form });
  const html = await res.text();
  expect(res.status, html).toBe(201);
  const row = (await endpointsOf(tenantId)).find((e) => e.url === url);
  if (!row) throw new Error("no endpoint row");
  return { row, secret: shownSecret(html), html };
}

describe("the portal's webhooks page", () => {
  it("adds an endpoint: the secret is shown once, with a copy button; the endpoint is listed", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row, secret, html } = await addInPortal(web, csrf, t.tenantId, {
      eventTypes: "key.created",
      description: "<b>ops</b>",
    });
    expect(secret).toBe(row.secret);
    expect(secret).toMatch(/^whsec_/);
    expect(html).toContain('data-copy="new-secret"');
    expect(row.eventTypes).toEqual(["key.created"]);
    expect(row.description).toBe("<b>ops</b>");

    const list = await web.page("/portal/webhooks");
    expect(list).not.toContain(secret);
    expect(list).not.toContain('id="new-secret"');
    expect(list).toContain(`data-endpoint-id="${row.id}"`);
    expect(list).toContain(row.url);
    expect(list).toContain("&lt;b&gt;ops&lt;/b&gt;");
    expect(list).not.toContain("<b>ops</b>");

    const all = await addInPortal(web, csrf, t.tenantId);
    expect(all.row.eventTypes).toEqual([]);
    // Two checked boxes arrive as the same field twice.
    const url = receiver();
    const two = await web.send("/portal/webhooks", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: BASE,
        "sec-fetch-site": "same-origin",
      },
      body: new URLSearchParams([
        ["_csrf", csrf],
        ["url", url],
        ["eventTypes", "key.created"],
        ["eventTypes", "usage.threshold.reached"],
      ]).toString(),
    });
    expect(two.status).toBe(201);
    expect((await endpointsOf(t.tenantId)).find((e) => e.url === url)?.eventTypes).toEqual([
      "key.created",
      "usage.threshold.reached",
    ]);
    expect(await web.page("/portal/webhooks")).toMatch(/<span class="muted">all<\/span>/);
  });

  it("refuses a private or metadata URL with the SSRF guard's reason in the form (400), storing nothing", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    for (const url of ["http://169.254.169.254/latest/meta-data/", "https://10.0.0.1/hooks"]) {
      const res = await web.post("/portal/webhooks", { _csrf: csrf, url, description: "x" });
      const html = await res.text();
      expect(res.status, url).toBe(400);
      expect(html).toContain("must not be a private, link-local or reserved address");
      expect(html).toContain(`value="${url}"`);
    }
    const unknownType = await web.post("/portal/webhooks", {
      _csrf: csrf,
      url: receiver(),
      eventTypes: "nope",
    });
    expect(unknownType.status).toBe(400);
    expect(await endpointsOf(t.tenantId)).toEqual([]);
  });

  it("sends a test event: its delivery is listed on the endpoint's page, and can be retried", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row } = await addInPortal(web, csrf, t.tenantId);
    const sent = await web.post(`/portal/webhooks/${row.id}/test`, { _csrf: csrf });
    expect(sent.status).toBe(303);
    expect(sent.headers.get("location")).toBe(`/portal/webhooks/${row.id}?done=test`);
    const [delivery] = await withDb((db) =>
      db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, row.id)),
    );
    if (!delivery) throw new Error("no delivery");
    const details = await web.page(`/portal/webhooks/${row.id}`);
    expect(details).toContain(`data-delivery-id="${delivery.id}"`);
    expect(details).toContain("webhook.test");
    expect(details).toContain(`/portal/webhooks/${row.id}/deliveries/${delivery.id}/retry`);

    const retried = await web.post(`/portal/webhooks/${row.id}/deliveries/${delivery.id}/retry`, {
      _csrf: csrf,
    });
    expect(retried.status).toBe(303);
    const [after] = await withDb((db) =>
      db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, delivery.id)),
    );
    expect(after?.replays).toBe(1);
  });

  it("disables, enables and deletes an endpoint", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row } = await addInPortal(web, csrf, t.tenantId);
    const off = await web.post(`/portal/webhooks/${row.id}/disable`, { _csrf: csrf });
    expect(off.status).toBe(303);
    expect((await endpointsOf(t.tenantId))[0]).toMatchObject({ enabled: false, disabledReason: "tenant" });
    expect(await web.page("/portal/webhooks")).toContain("disabled (tenant)");
    const on = await web.post(`/portal/webhooks/${row.id}/enable`, { _csrf: csrf });
    expect(on.status).toBe(303);
    expect((await endpointsOf(t.tenantId))[0]).toMatchObject({ enabled: true, disabledReason: null });
    const gone = await web.post(`/portal/webhooks/${row.id}/delete`, { _csrf: csrf });
    expect(gone.status).toBe(303);
    expect(await endpointsOf(t.tenantId)).toEqual([]);
    expect(await web.page("/portal/webhooks")).not.toContain(row.id);
  });

  it("rotates the secret: the new one is shown once and signs from now on", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row, secret } = await addInPortal(web, csrf, t.tenantId);
    const res = await web.post(`/portal/webhooks/${row.id}/rotate-secret`, { _csrf: csrf });
    const html = await res.text();
    expect(res.status).toBe(200);
    const rotated = shownSecret(html);
    expect(rotated).not.toBe(secret);
    expect((await endpointsOf(t.tenantId))[0]).toMatchObject({ secret: rotated, previousSecret: secret });
    expect(await web.page("/portal/webhooks")).not.toContain(rotated);
  });

  it("announces an endpoint the gateway disabled, with why and since when, and offers to enable it", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row } = await addInPortal(web, csrf, t.tenantId);
    const at = new Date("2026-11-20T08:30:00Z");
    await withDb(async (db) => {
      await db
        .update(webhookEndpoints)
        .set({ enabled: false, disabledReason: "gone" })
        .where(eq(webhookEndpoints.id, row.id));
      await db.insert(webhookEvents).values({
        id: newId("evt"),
        tenantId: t.tenantId,
        type: "webhook.endpoint.disabled",
        data: { endpointId: row.id, url: row.url, reason: "gone" },
        createdAt: at,
      });
    });
    const html = await web.page("/portal/webhooks");
    const notice = html.split(`data-disabled-endpoint="${row.id}"`)[1]?.split("</div>")[0] ?? "";
    expect(notice).toContain("the receiver answered 410 Gone");
    expect(notice).toContain("2026-11-20");
    expect(notice).toContain(`/portal/webhooks/${row.id}/enable`);
    // The event is in the recent events list too.
    expect(html).toMatch(/webhook\.endpoint\.disabled<\/code><\/td><td>[^<]+<\/td><td>[^<]*410 Gone/);
  });

  it("answers 404 for another tenant's endpoint and delivery on every route, changing nothing", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const owner = await webhooksPage(a.tenantId);
    const { row } = await addInPortal(owner.web, owner.csrf, a.tenantId);
    await owner.web.post(`/portal/webhooks/${row.id}/test`, { _csrf: owner.csrf });
    const [delivery] = await withDb((db) =>
      db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, row.id)),
    );
    const other = await webhooksPage(b.tenantId);
    expect((await other.web.get(`/portal/webhooks/${row.id}`)).status).toBe(404);
    for (const action of [
      "test",
      "rotate-secret",
      "enable",
      "disable",
      "delete",
      `deliveries/${delivery?.id}/retry`,
    ]) {
      const res = await other.web.post(`/portal/webhooks/${row.id}/${action}`, { _csrf: other.csrf });
      expect({ action, status: res.status }).toEqual({ action, status: 404 });
    }
    const [still] = await endpointsOf(a.tenantId);
    expect(still).toMatchObject({ id: row.id, enabled: true, secret: row.secret });
    const deliveries = await withDb((db) =>
      db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, row.id)),
    );
    expect(deliveries.map((d) => d.replays)).toEqual([0]);
    expect(await other.web.page("/portal/webhooks")).not.toContain(row.id);
  });

  it("refuses every form without the session's CSRF value (403), changing nothing", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row } = await addInPortal(web, csrf, t.tenantId);
    const forms: Array<[string, Record<string, string>]> = [
      ["/portal/webhooks", { url: receiver() }],
      [`/portal/webhooks/${row.id}/test`, {}],
      [`/portal/webhooks/${row.id}/rotate-secret`, {}],
      [`/portal/webhooks/${row.id}/disable`, {}],
      [`/portal/webhooks/${row.id}/delete`, {}],
    ];
    for (const [path, form] of forms) {
      expect((await web.post(path, form)).status, path).toBe(403);
      expect((await web.post(path, { ...form, _csrf: "0".repeat(64) })).status, path).toBe(403);
    }
    expect(await endpointsOf(t.tenantId)).toEqual([
      expect.objectContaining({ id: row.id, enabled: true, secret: row.secret }),
    ]);
  });

  it("gates changes by the tenant's status as the API's door: suspended 403; disabling and deleting stay allowed", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row } = await addInPortal(web, csrf, t.tenantId);
    await withDb((db) => db.update(tenants).set({ status: "suspended" }).where(eq(tenants.id, t.tenantId)));
    for (const [path, form] of [
      ["/portal/webhooks", { url: receiver() }],
      [`/portal/webhooks/${row.id}/test`, {}],
      [`/portal/webhooks/${row.id}/rotate-secret`, {}],
    ] as const) {
      const res = await web.post(path, { _csrf: csrf, ...form });
      expect(res.status, path).toBe(403);
      expect(await res.text()).toContain("This account is suspended.");
    }
    expect(await web.page("/portal/webhooks")).not.toContain('id="create-endpoint"');
    expect((await web.post(`/portal/webhooks/${row.id}/disable`, { _csrf: csrf })).status).toBe(303);
    expect((await web.post(`/portal/webhooks/${row.id}/enable`, { _csrf: csrf })).status).toBe(403);
    expect((await web.post(`/portal/webhooks/${row.id}/delete`, { _csrf: csrf })).status).toBe(303);
    expect(await endpointsOf(t.tenantId)).toEqual([]);
  });

  it("records each change in the audit trail with the portal session as actor", async () => {
    const t = await seedTenant();
    const { web, csrf } = await webhooksPage(t.tenantId);
    const { row } = await addInPortal(web, csrf, t.tenantId);
    await web.post(`/portal/webhooks/${row.id}/disable`, { _csrf: csrf });
    await web.post(`/portal/webhooks/${row.id}/delete`, { _csrf: csrf });
    const entries = await withDb((db) =>
      db
        .select()
        .from(auditActions)
        .where(and(eq(auditActions.chain, t.tenantId), eq(auditActions.actorType, "portal"))),
    );
    const byAction = (action: string) => entries.filter((e) => e.action === action);
    expect(byAction("webhook_endpoint.create")).toHaveLength(1);
    const [update] = byAction("webhook_endpoint.update");
    expect(update?.changes).toMatchObject({ enabled: { before: true, after: false } });
    expect(byAction("webhook_endpoint.delete")).toHaveLength(1);
    expect(JSON.stringify(entries)).not.toContain(row.secret);
  });
});
