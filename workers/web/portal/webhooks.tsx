/**
 * `/portal/webhooks`: the tenant's webhook endpoints, their delivery log and the events lately
 * recorded for the tenant, and the forms that change them:
 * - `POST /portal/webhooks`: add an endpoint; the answer shows its `whsec_` secret once;
 * - `POST /portal/webhooks/:id/test`: a `webhook.test` event to that endpoint only;
 * - `POST /portal/webhooks/:id/rotate-secret`: a new secret (shown once; the old one signs for 24 h);
 * - `POST /portal/webhooks/:id/enable` and `…/disable`; `POST /portal/webhooks/:id/delete`;
 * - `GET /portal/webhooks/:id`: the endpoint's recent deliveries with their attempts, and
 *   `POST /portal/webhooks/:id/deliveries/:deliveryId/retry` to send one again.
 *
 * Every change goes through the service the tenant and admin APIs use (workers/api/webhook-endpoints.ts)
 * as the session's tenant, so another tenant's endpoint or delivery is "not found" under row-level
 * security before anything changes; each sets the same audit detail as the tenant API
 * (workers/api/webhook-audit.ts). Changes that make or keep deliveries going follow the tenant API
 * door's status rules (tenant-gate.ts); disabling and deleting are always allowed, as revoking a key is.
 * An endpoint the gateway switched off (410 Gone, or 5 days of failures) is announced at the top.
 */

import { and, desc, eq, inArray, sql } from "drizzle-orm";
import type { Context, Hono } from "hono";
import { type WebhookAttempt, type WebhookEndpoint, type WebhookEvent, webhookEvents } from "../../../schema";
import { PageQuery } from "../../api/pagination";
import { endpointAudit, endpointChanges, retryAudit, testAudit } from "../../api/webhook-audit";
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listDeliveries,
  listEndpoints,
  MAX_ENDPOINTS_PER_TENANT,
  retryDelivery,
  rotateSecret,
  sendTest,
  updateEndpoint,
  type Viewer,
} from "../../api/webhook-endpoints";
import { WebhookEndpointInput } from "../../api/webhook-schemas";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { EVENT_TYPES } from "../../events/catalog";
import { withTenant } from "../../shared/db";
import { formatUtc } from "../format";
import { CsrfField, Notice, PostButton, TableHead } from "../layout";
import { portalTenant, portalTenantId } from "./context";
import { portalPage } from "./portal-page";
import { changeRefusal } from "./tenant-gate";

/** Events listed under "Recent events". */
const RECENT_EVENTS = 50;
/** Deliveries per page of an endpoint's log. */
const DELIVERIES_PER_PAGE = 25;

/** Ids are `whep_` / `dlv_` and base32; anything else names nothing (and never reaches Postgres). */
const ENDPOINT_ID = /^whep_[0-9A-Za-z]{1,60}$/;
const DELIVERY_ID = /^dlv_[0-9A-Za-z]{1,60}$/;

/** Outcomes of a redirected change, named in the query: fixed texts, never echoed input. */
const DONE: Record<string, string> = {
  enabled: "The endpoint is enabled. New events are delivered to it again.",
  disabled: "The endpoint is disabled. No events are delivered to it until you enable it.",
  deleted: "The endpoint is deleted, with its delivery log.",
  test: "A test event is on its way. Its delivery is listed below.",
  retried: "The delivery is queued again.",
};

/** Why the gateway switched an endpoint off, as a sentence. */
const DISABLED_WHY: Record<string, string> = {
  gone: "the receiver answered 410 Gone",
  failing: "every delivery attempt failed for 5 days",
  tenant: "you disabled it",
};

type Form = Record<string, string | File | (string | File)[]>;

const field = (form: Form, name: string): string => {
  const value = form[name];
  return typeof value === "string" ? value : "";
};

const fields = (form: Form, name: string): string[] => {
  const value = form[name];
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v): v is string => typeof v === "string");
};

/** The add form's values, kept to fill the form again after a refusal. */
interface CreateValues {
  url: string;
  eventTypes: string[];
  description: string;
}

const EMPTY_CREATE: CreateValues = { url: "", eventTypes: [], description: "" };

interface PageState {
  notice?: { kind: "ok" | "error"; text: string };
  status?: number;
  /** A secret just made (creation or rotation), shown once. */
  secret?: { value: string; url: string; rotated: boolean };
  create?: CreateValues;
}

const viewerOf = (c: Context<AppEnv>): Viewer => ({ tenantId: portalTenantId(c) });
const policyOf = (c: Context<AppEnv>) => ({ allowLocalhost: c.var.config.webhookAllowLocalhost });

/** The endpoint `id` if it is the session's tenant's (read under its RLS); otherwise 404. */
async function ownEndpoint(c: Context<AppEnv>, id: string): Promise<WebhookEndpoint> {
  if (!ENDPOINT_ID.test(id)) throw new GatewayError("not_found", "No such webhook endpoint.");
  return await getEndpoint(c.var.db, viewerOf(c), id);
}

/** The tenant's latest events, newest first (read as the tenant: row-level security). */
async function recentEvents(c: Context<AppEnv>): Promise<WebhookEvent[]> {
  const tenantId = portalTenantId(c);
  return await withTenant(c.var.db, tenantId, (tx) =>
    tx
      .select()
      .from(webhookEvents)
      .where(eq(webhookEvents.tenantId, tenantId))
      .orderBy(desc(webhookEvents.createdAt), desc(webhookEvents.id))
      .limit(RECENT_EVENTS),
  );
}

/** When each of endpoints `ids` was last disabled by the gateway (its `webhook.endpoint.disabled` event). */
async function disabledSince(c: Context<AppEnv>, ids: string[]): Promise<Map<string, Date>> {
  const since = new Map<string, Date>();
  if (ids.length === 0) return since;
  const tenantId = portalTenantId(c);
  const endpointId = sql<string>`${webhookEvents.data}->>'endpointId'`;
  const rows = await withTenant(c.var.db, tenantId, (tx) =>
    tx
      .select({ endpointId, at: webhookEvents.createdAt })
      .from(webhookEvents)
      .where(
        and(
          eq(webhookEvents.tenantId, tenantId),
          eq(webhookEvents.type, "webhook.endpoint.disabled"),
          inArray(endpointId, ids),
        ),
      )
      .orderBy(desc(webhookEvents.createdAt)),
  );
  for (const row of rows) if (!since.has(row.endpointId)) since.set(row.endpointId, row.at);
  return since;
}

/** An event's `data` as a short line for the events list. */
function summary(event: WebhookEvent): string {
  const data = (event.data ?? {}) as Record<string, unknown>;
  if (event.type === "webhook.endpoint.disabled")
    return `${String(data.url)} was disabled: ${DISABLED_WHY[String(data.reason)] ?? String(data.reason)}.`;
  if (event.type === "usage.threshold.reached")
    return `${String(data.threshold)} % of the ${String(data.window)} limit (${String(data.used)} of ${String(data.limit)}, ${String(data.env)}, ${String(data.period)}).`;
  const text = Object.entries(data)
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(", ");
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

function NewSecret(props: { secret: NonNullable<PageState["secret"]> }) {
  return (
    <section class="card" aria-labelledby="new-secret-title">
      <h2 id="new-secret-title">
        {props.secret.rotated ? "The endpoint's new secret" : "Your endpoint's secret"}
      </h2>
      <p class="notice notice-error" role="alert">
        Copy it now: it won't be shown again. Your receiver verifies signatures with it.
      </p>
      <p>
        <code>{props.secret.url}</code>
      </p>
      <div class="secret">
        <code id="new-secret">{props.secret.value}</code>
        <button type="button" data-copy="new-secret">
          Copy
        </button>
      </div>
      {props.secret.rotated && (
        <p class="muted">The old secret also signs deliveries for the next 24 hours.</p>
      )}
    </section>
  );
}

function CreateForm(props: { csrf: string; values: CreateValues }) {
  const v = props.values;
  return (
    <form method="post" action="/portal/webhooks" id="create-endpoint" class="card narrow">
      <h2>Add an endpoint</h2>
      <CsrfField csrf={props.csrf} />
      <label for="endpoint-url">URL</label>
      <input
        id="endpoint-url"
        name="url"
        type="url"
        required
        maxlength={2048}
        value={v.url}
        placeholder="https://example.com/webhooks"
      />
      <fieldset>
        <legend>Event types (none checked: all)</legend>
        {EVENT_TYPES.map((type) => (
          <label>
            <input type="checkbox" name="eventTypes" value={type} checked={v.eventTypes.includes(type)} />{" "}
            <code>{type}</code>
          </label>
        ))}
      </fieldset>
      <label for="endpoint-description">Description (optional)</label>
      <input id="endpoint-description" name="description" maxlength={200} value={v.description} />
      <button type="submit" class="primary">
        Add endpoint
      </button>
    </form>
  );
}

function stateOf(e: WebhookEndpoint) {
  if (e.enabled) return <span class="badge badge-active">enabled</span>;
  const why = e.disabledReason ? ` (${e.disabledReason})` : "";
  return <span class="badge badge-bad">{`disabled${why}`}</span>;
}

function EndpointRow(props: { endpoint: WebhookEndpoint; csrf: string; mayChange: boolean }) {
  const e = props.endpoint;
  const base = `/portal/webhooks/${e.id}`;
  return (
    <tr data-endpoint-id={e.id}>
      <td>
        <a href={base}>
          <code>{e.url}</code>
        </a>
        {e.description && <div class="muted">{e.description}</div>}
      </td>
      <td>
        {e.eventTypes.length === 0 ? (
          <span class="muted">all</span>
        ) : (
          e.eventTypes.map((t) => (
            <>
              <code>{t}</code>{" "}
            </>
          ))
        )}
      </td>
      <td>{stateOf(e)}</td>
      <td>{formatUtc(e.createdAt)}</td>
      <td>
        {props.mayChange && (
          <>
            <PostButton action={`${base}/test`} csrf={props.csrf} label="Send test" />
            <PostButton
              action={`${base}/rotate-secret`}
              csrf={props.csrf}
              label="Rotate secret"
              confirm="Rotate this endpoint's secret? The old one keeps signing for 24 hours."
            />
          </>
        )}
        {e.enabled ? (
          <PostButton action={`${base}/disable`} csrf={props.csrf} label="Disable" />
        ) : (
          props.mayChange && <PostButton action={`${base}/enable`} csrf={props.csrf} label="Enable" />
        )}
        <PostButton
          action={`${base}/delete`}
          csrf={props.csrf}
          label="Delete"
          confirm={`Delete the endpoint ${e.url} and its delivery log?`}
          danger
        />
      </td>
    </tr>
  );
}

/** The webhooks page: notices, a secret just made (once), the add form, endpoints and recent events. */
async function webhooksPage(c: Context<AppEnv>, state: PageState = {}) {
  const { tenant } = await portalTenant(c);
  const refusal = changeRefusal(tenant, Date.now());
  const { rows } = await listEndpoints(c.var.db, viewerOf(c), tenant.id, { limit: MAX_ENDPOINTS_PER_TENANT });
  const endpoints = rows.map((r) => r.row);
  const events = await recentEvents(c);
  const offByGateway = endpoints.filter(
    (e) => !e.enabled && e.disabledReason && e.disabledReason !== "tenant",
  );
  const since = await disabledSince(
    c,
    offByGateway.map((e) => e.id),
  );
  const csrf = c.var.web?.csrf ?? "";
  return portalPage(
    c,
    { title: "Webhooks", current: "/portal/webhooks", who: tenant.name, status: state.status },
    <>
      {state.notice && <Notice kind={state.notice.kind}>{state.notice.text}</Notice>}
      {offByGateway.map((e) => (
        <div class="notice notice-error" role="alert" data-disabled-endpoint={e.id}>
          {`The endpoint ${e.url} was disabled by the gateway on ${formatUtc(since.get(e.id) ?? e.updatedAt)}: ${DISABLED_WHY[e.disabledReason ?? ""] ?? e.disabledReason}. No events are delivered to it. `}
          {refusal === null && (
            <PostButton action={`/portal/webhooks/${e.id}/enable`} csrf={csrf} label="Enable" />
          )}
        </div>
      ))}
      {state.secret && <NewSecret secret={state.secret} />}
      {refusal ? (
        <Notice kind="error">{`Endpoints cannot be added, tested or enabled now: ${refusal.message} You can still disable or delete them.`}</Notice>
      ) : (
        <CreateForm csrf={csrf} values={state.create ?? EMPTY_CREATE} />
      )}
      <h2>Your endpoints</h2>
      {endpoints.length === 0 ? (
        <p class="muted">No endpoints yet.</p>
      ) : (
        <div class="table-wrap">
          <table id="endpoints">
            <TableHead columns={["URL", "Event types", "State", "Created", "Actions"]} />
            <tbody>
              {endpoints.map((e) => (
                <EndpointRow endpoint={e} csrf={csrf} mayChange={refusal === null} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Recent events</h2>
      {events.length === 0 ? (
        <p class="muted">No events yet.</p>
      ) : (
        <div class="table-wrap">
          <table id="events">
            <TableHead columns={["Type", "Time", "Summary"]} />
            <tbody>
              {events.map((ev) => (
                <tr data-event-id={ev.id}>
                  <td>
                    <code>{ev.type}</code>
                  </td>
                  <td>{formatUtc(ev.createdAt)}</td>
                  <td>{summary(ev)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>,
  );
}

function lastAttempt(attempts: WebhookAttempt[]): WebhookAttempt | undefined {
  return attempts[attempts.length - 1];
}

/** One endpoint: what it is, and its deliveries, newest first, each with its last attempt. */
async function endpointPage(c: Context<AppEnv>, id: string, state: PageState = {}) {
  const { tenant } = await portalTenant(c);
  const endpoint = await ownEndpoint(c, id);
  const query = PageQuery.safeParse({ cursor: c.req.query("cursor"), limit: DELIVERIES_PER_PAGE });
  if (!query.success)
    throw new GatewayError("validation_failed", "The cursor is not one this list returned.");
  const { rows, page } = await listDeliveries(c.var.db, viewerOf(c), endpoint.id, query.data);
  const list = page.page(
    rows,
    (d) => d,
    (d) => d.delivery.id,
  );
  const mayChange = changeRefusal(tenant, Date.now()) === null && endpoint.enabled;
  const csrf = c.var.web?.csrf ?? "";
  const base = `/portal/webhooks/${endpoint.id}`;
  return portalPage(
    c,
    { title: "Webhook endpoint", current: "/portal/webhooks", who: tenant.name, status: state.status },
    <>
      {state.notice && <Notice kind={state.notice.kind}>{state.notice.text}</Notice>}
      <p>
        <a href="/portal/webhooks">All endpoints</a>
      </p>
      <section class="card">
        <h2>
          <code>{endpoint.url}</code>
        </h2>
        {endpoint.description && <p>{endpoint.description}</p>}
        <p>
          {stateOf(endpoint)}{" "}
          {endpoint.eventTypes.length === 0
            ? "All event types."
            : `Event types: ${endpoint.eventTypes.join(", ")}.`}
        </p>
      </section>
      <h2>Deliveries</h2>
      {list.data.length === 0 ? (
        <p class="muted">No deliveries yet.</p>
      ) : (
        <div class="table-wrap">
          <table id="deliveries">
            <TableHead
              columns={[
                "Event type",
                "Created",
                "Status",
                "Attempts",
                "Last response",
                "Latency",
                "Response excerpt",
                "Next attempt",
                "Actions",
              ]}
            />
            <tbody>
              {list.data.map(({ delivery: d, eventType, attempts }) => {
                const last = lastAttempt(attempts);
                return (
                  <tr data-delivery-id={d.id}>
                    <td>
                      <code>{eventType}</code>
                    </td>
                    <td>{formatUtc(d.createdAt)}</td>
                    <td>{d.status}</td>
                    <td class="num">{d.attempts}</td>
                    <td>{last ? (last.status ?? last.error ?? "no response") : "—"}</td>
                    <td class="num">{last ? `${last.latencyMs} ms` : "—"}</td>
                    <td>{last?.responseExcerpt ? <code>{last.responseExcerpt.slice(0, 120)}</code> : "—"}</td>
                    <td>{d.status === "pending" && d.nextAttemptAt ? formatUtc(d.nextAttemptAt) : "—"}</td>
                    <td>
                      {mayChange && (
                        <PostButton action={`${base}/deliveries/${d.id}/retry`} csrf={csrf} label="Retry" />
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {list.next_cursor && (
        <p>
          <a href={`${base}?cursor=${encodeURIComponent(list.next_cursor)}`}>Older deliveries</a>
        </p>
      )}
      {!endpoint.enabled && <p class="muted">Enable the endpoint to retry its deliveries.</p>}
    </>,
  );
}

/** Refuses a change the tenant's status does not allow: the page with the reason, and its status. */
async function refused(c: Context<AppEnv>): Promise<PageState | null> {
  const { tenant } = await portalTenant(c);
  const refusal = changeRefusal(tenant, Date.now());
  return refusal && { notice: { kind: "error", text: refusal.message }, status: refusal.status };
}

/** A 4xx the service answered (a refused URL, too many endpoints, a disabled endpoint) as a notice. */
function asNotice(error: unknown): PageState {
  if (error instanceof GatewayError && error.status < 500 && error.status !== 404)
    return { notice: { kind: "error", text: error.message }, status: error.status };
  throw error;
}

/** Registers the webhooks pages and their forms (behind the portal's session door and CSRF check). */
export function registerPortalWebhooks(portal: Hono<AppEnv>): void {
  portal.get("/webhooks", (c) => {
    const done = c.req.query("done");
    return webhooksPage(c, done && DONE[done] ? { notice: { kind: "ok", text: DONE[done] } } : {});
  });

  portal.post("/webhooks", async (c) => {
    const form = await c.req.parseBody({ all: true });
    const values: CreateValues = {
      url: field(form, "url").trim(),
      eventTypes: fields(form, "eventTypes"),
      description: field(form, "description"),
    };
    const refusal = await refused(c);
    if (refusal) return webhooksPage(c, { ...refusal, create: values });
    const parsed = WebhookEndpointInput.safeParse(values);
    if (!parsed.success) {
      const text = parsed.error.issues
        .map(
          (i) =>
            `${i.path[0] === "eventTypes" ? "Event types" : i.path[0] === "url" ? "URL" : "Description"}: ${i.message}.`,
        )
        .join(" ");
      return webhooksPage(c, { notice: { kind: "error", text }, status: 400, create: values });
    }
    const tenantId = portalTenantId(c);
    try {
      const { endpoint, secret } = await createEndpoint(
        c.var.db,
        viewerOf(c),
        tenantId,
        parsed.data,
        policyOf(c),
      );
      c.set("audit", endpointAudit("create", endpoint, endpointChanges(null, endpoint)));
      return webhooksPage(c, { secret: { value: secret, url: endpoint.url, rotated: false }, status: 201 });
    } catch (error) {
      return webhooksPage(c, { ...asNotice(error), create: values });
    }
  });

  portal.get("/webhooks/:id", (c) => {
    const done = c.req.query("done");
    return endpointPage(
      c,
      c.req.param("id"),
      done && DONE[done] ? { notice: { kind: "ok", text: DONE[done] } } : {},
    );
  });

  portal.post("/webhooks/:id/test", async (c) => {
    const endpoint = await ownEndpoint(c, c.req.param("id"));
    const refusal = await refused(c);
    if (refusal) return webhooksPage(c, refusal);
    const view = await sendTest(c.var.db, c.env, viewerOf(c), endpoint.id);
    c.set("audit", testAudit(view));
    return c.redirect(`/portal/webhooks/${endpoint.id}?done=test`, 303);
  });

  portal.post("/webhooks/:id/rotate-secret", async (c) => {
    const endpoint = await ownEndpoint(c, c.req.param("id"));
    const refusal = await refused(c);
    if (refusal) return webhooksPage(c, refusal);
    const rotated = await rotateSecret(c.var.db, viewerOf(c), endpoint.id);
    c.set("audit", endpointAudit("rotate_secret", rotated.endpoint));
    return webhooksPage(c, { secret: { value: rotated.secret, url: rotated.endpoint.url, rotated: true } });
  });

  for (const [verb, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const) {
    portal.post(`/webhooks/:id/${verb}`, async (c) => {
      const endpoint = await ownEndpoint(c, c.req.param("id"));
      if (enabled) {
        const refusal = await refused(c);
        if (refusal) return webhooksPage(c, refusal);
      }
      const { before, after } = await updateEndpoint(
        c.var.db,
        viewerOf(c),
        endpoint.id,
        { enabled },
        policyOf(c),
      );
      c.set("audit", endpointAudit("update", after, endpointChanges(before, after)));
      return c.redirect(`/portal/webhooks?done=${enabled ? "enabled" : "disabled"}`, 303);
    });
  }

  portal.post("/webhooks/:id/delete", async (c) => {
    const endpoint = await ownEndpoint(c, c.req.param("id"));
    const deleted = await deleteEndpoint(c.var.db, viewerOf(c), endpoint.id);
    c.set("audit", endpointAudit("delete", deleted, endpointChanges(deleted, null)));
    return c.redirect("/portal/webhooks?done=deleted", 303);
  });

  portal.post("/webhooks/:id/deliveries/:deliveryId/retry", async (c) => {
    const endpoint = await ownEndpoint(c, c.req.param("id"));
    const deliveryId = c.req.param("deliveryId");
    if (!DELIVERY_ID.test(deliveryId)) throw new GatewayError("not_found", "No such webhook delivery.");
    const refusal = await refused(c);
    if (refusal) return endpointPage(c, endpoint.id, refusal);
    try {
      const result = await retryDelivery(c.var.db, c.env, viewerOf(c), deliveryId, endpoint.id);
      c.set("audit", retryAudit(result));
    } catch (error) {
      return endpointPage(c, endpoint.id, asNotice(error));
    }
    return c.redirect(`/portal/webhooks/${endpoint.id}?done=retried`, 303);
  });
}
