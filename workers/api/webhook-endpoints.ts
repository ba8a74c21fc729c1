/**
 * Webhook endpoints and their delivery log, as the tenant API (`/gateway/v1/webhooks`) and the admin
 * API (`/admin/v1/…/webhooks`) manage them: one implementation for both, told apart by the `Viewer`.
 *
 * A tenant's every query runs under its row-level security (`withTenant`), so another tenant's
 * endpoint or delivery is simply "not found". The tenant role may only read events and deliveries:
 * a test send and a retry first prove, under RLS, that the endpoint or delivery is the tenant's, and
 * only then write as the gateway's own connection. The delivery engine (deliver, schedule, sweep)
 * takes every delivery created or reset here from `dispatchDeliveries` on.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import {
  type WebhookAttempt,
  type WebhookDelivery,
  type WebhookEndpoint,
  webhookAttempts,
  webhookDeliveries,
  webhookEndpoints,
  webhookEvents,
} from "../../schema";
import type { Bindings } from "../env";
import { GatewayError } from "../errors";
import type { EventType } from "../events/catalog";
import { dispatchDeliveries, recordEvents } from "../events/emit";
import { checkEndpointUrl } from "../events/endpoint-url";
import type { Db, Tx } from "../shared/db";
import { withTenant } from "../shared/db";
import { newId } from "../shared/ids";
import { keyset } from "./pagination";

/** Endpoints one tenant may register. */
export const MAX_ENDPOINTS_PER_TENANT = 20;
/** How long the secret before a rotation still signs deliveries (both signatures are sent). */
export const PREVIOUS_SECRET_TTL_MS = 24 * 3_600_000;

/** Who asks: a tenant (its own rows only, under row-level security) or the operator (any tenant). */
export type Viewer = { tenantId: string } | "operator";

export interface EndpointInput {
  url: string;
  eventTypes: EventType[];
  description: string;
}

export interface EndpointPatch {
  url?: string;
  eventTypes?: EventType[];
  description?: string;
  enabled?: boolean;
}

/** A delivery as its log shows it: the event's type and every attempt, oldest first. */
export interface DeliveryView {
  delivery: WebhookDelivery;
  eventType: string;
  attempts: WebhookAttempt[];
}

/** A dead delivery as the operator's dead-letter store shows it. */
export interface DeadLetterView extends DeliveryView {
  endpointUrl: string;
}

/** Whether URLs may be http:// and loopback (WEBHOOK_ALLOW_LOCALHOST, development only). */
export interface UrlPolicy {
  allowLocalhost: boolean;
}

interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

const notFound = () => new GatewayError("not_found", "No such webhook endpoint.");
const deliveryNotFound = () => new GatewayError("not_found", "No such webhook delivery.");

/** Runs `fn` as the viewer sees the database: under the tenant's RLS, or as the operator. */
const asViewer = <T>(db: Db, viewer: Viewer, fn: (tx: Tx) => Promise<T>): Promise<T> =>
  viewer === "operator" ? db.transaction(fn) : withTenant(db, viewer.tenantId, fn);

/** The URL as stored, or a 400 naming why the SSRF guard refused it. */
function checkedUrl(raw: string, policy: UrlPolicy): string {
  const verdict = checkEndpointUrl(raw, policy);
  if (!verdict.ok)
    throw new GatewayError("validation_failed", `The endpoint URL ${verdict.reason}.`, {
      errors: [{ path: "url", message: verdict.reason }],
    });
  return verdict.url;
}

/** `whsec_` + base64 of 32 random bytes (Standard Webhooks' secret format). */
export function newSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

const unique = <T>(values: readonly T[]): T[] => [...new Set(values)];

async function findEndpoint(tx: Tx, id: string): Promise<WebhookEndpoint> {
  const [row] = await tx.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
  if (!row) throw notFound();
  return row;
}

/** Reads one endpoint; another tenant's is "not found". */
export async function getEndpoint(db: Db, viewer: Viewer, id: string): Promise<WebhookEndpoint> {
  return await asViewer(db, viewer, (tx) => findEndpoint(tx, id));
}

/**
 * Registers an endpoint for `tenantId` with a fresh secret, returned here and never again. At most
 * `MAX_ENDPOINTS_PER_TENANT` per tenant: a lock per tenant makes two concurrent creations count in turn.
 */
export async function createEndpoint(
  db: Db,
  viewer: Viewer,
  tenantId: string,
  input: EndpointInput,
  policy: UrlPolicy,
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const url = checkedUrl(input.url, policy);
  const secret = newSecret();
  const endpoint = await asViewer(db, viewer, async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`webhook-endpoints:${tenantId}`}))`);
    const [count] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.tenantId, tenantId));
    if ((count?.n ?? 0) >= MAX_ENDPOINTS_PER_TENANT)
      throw new GatewayError(
        "conflict",
        `A tenant has at most ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints; delete one first.`,
      );
    const [row] = await tx
      .insert(webhookEndpoints)
      .values({
        id: newId("whep"),
        tenantId,
        url,
        description: input.description,
        eventTypes: unique(input.eventTypes),
        secret,
      })
      .returning();
    if (!row) throw new Error("webhook endpoint insert returned no row");
    return row;
  });
  return { endpoint, secret };
}

/** One page of `tenantId`'s endpoints, newest first. */
export async function listEndpoints(db: Db, viewer: Viewer, tenantId: string, query: PageRequest) {
  const page = keyset("webhook-endpoints", webhookEndpoints, query, "desc");
  const rows = await asViewer(db, viewer, (tx) =>
    tx
      .select({ row: webhookEndpoints, position: page.position })
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.tenantId, tenantId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.take),
  );
  return { rows, page };
}

/**
 * Changes the fields sent. Disabling by hand records `tenant` as the reason; enabling clears the
 * reason and the failure streak (the 5-day clock starts again). Returns the row before and after.
 */
export async function updateEndpoint(
  db: Db,
  viewer: Viewer,
  id: string,
  patch: EndpointPatch,
  policy: UrlPolicy,
): Promise<{ before: WebhookEndpoint; after: WebhookEndpoint }> {
  const url = patch.url === undefined ? undefined : checkedUrl(patch.url, policy);
  return await asViewer(db, viewer, async (tx) => {
    const before = await findEndpoint(tx, id);
    const enabling = patch.enabled === true && !before.enabled;
    const disabling = patch.enabled === false && before.enabled;
    const [after] = await tx
      .update(webhookEndpoints)
      .set({
        ...(url === undefined ? {} : { url }),
        ...(patch.eventTypes === undefined ? {} : { eventTypes: unique(patch.eventTypes) }),
        ...(patch.description === undefined ? {} : { description: patch.description }),
        ...(patch.enabled === undefined ? {} : { enabled: patch.enabled }),
        ...(enabling ? { disabledReason: null, failingSince: null } : {}),
        ...(disabling ? { disabledReason: "tenant" } : {}),
        updatedAt: new Date(),
      })
      .where(eq(webhookEndpoints.id, id))
      .returning();
    if (!after) throw notFound();
    return { before, after };
  });
}

/** Deletes an endpoint; its deliveries and their attempts go with it. Returns the deleted row. */
export async function deleteEndpoint(db: Db, viewer: Viewer, id: string): Promise<WebhookEndpoint> {
  return await asViewer(db, viewer, async (tx) => {
    const [row] = await tx.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)).returning();
    if (!row) throw notFound();
    return row;
  });
}

/**
 * A new secret, returned here and never again; the old one keeps signing (a second signature) for
 * `PREVIOUS_SECRET_TTL_MS`, so a receiver can switch without losing a delivery.
 */
export async function rotateSecret(
  db: Db,
  viewer: Viewer,
  id: string,
  now: Date = new Date(),
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const secret = newSecret();
  const endpoint = await asViewer(db, viewer, async (tx) => {
    const [row] = await tx
      .update(webhookEndpoints)
      .set({
        previousSecret: sql`${webhookEndpoints.secret}`,
        previousSecretUntil: new Date(now.getTime() + PREVIOUS_SECRET_TTL_MS),
        secret,
        updatedAt: now,
      })
      .where(eq(webhookEndpoints.id, id))
      .returning();
    if (!row) throw notFound();
    return row;
  });
  return { endpoint, secret };
}

/**
 * Sends a `webhook.test` event to this endpoint only (enabled or not): stored, one delivery, queued.
 */
export async function sendTest(
  db: Db,
  env: Pick<Bindings, "EVENTS_QUEUE">,
  viewer: Viewer,
  id: string,
): Promise<DeliveryView> {
  const endpoint = await getEndpoint(db, viewer, id);
  const deliveryIds = await db.transaction((tx) =>
    recordEvents(
      tx,
      [
        {
          tenantId: endpoint.tenantId,
          type: "webhook.test",
          data: { endpointId: endpoint.id, message: "A test event sent from the gateway's webhooks API." },
        },
      ],
      { endpointId: endpoint.id },
    ),
  );
  await dispatchDeliveries(env, deliveryIds);
  const [deliveryId] = deliveryIds;
  if (!deliveryId) throw new Error("a test event created no delivery");
  const [view] = await deliveryViews(db, [deliveryId]);
  if (!view) throw deliveryNotFound();
  return view;
}

/** The deliveries' event types and attempts, in the order of `ids`. */
async function deliveryViews(tx: Db | Tx, ids: readonly string[]): Promise<DeliveryView[]> {
  if (ids.length === 0) return [];
  const rows = await tx
    .select({ delivery: webhookDeliveries, eventType: webhookEvents.type })
    .from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .where(inArray(webhookDeliveries.id, [...ids]));
  const attempts = await attemptsOf(tx, ids);
  const byId = new Map(rows.map((r) => [r.delivery.id, r]));
  return ids.flatMap((id) => {
    const r = byId.get(id);
    return r ? [{ ...r, attempts: attempts.get(id) ?? [] }] : [];
  });
}

async function attemptsOf(tx: Db | Tx, ids: readonly string[]): Promise<Map<string, WebhookAttempt[]>> {
  const byDelivery = new Map<string, WebhookAttempt[]>();
  if (ids.length === 0) return byDelivery;
  const rows = await tx
    .select()
    .from(webhookAttempts)
    .where(inArray(webhookAttempts.deliveryId, [...ids]))
    .orderBy(webhookAttempts.deliveryId, webhookAttempts.attempt, webhookAttempts.id);
  for (const a of rows) {
    const list = byDelivery.get(a.deliveryId) ?? [];
    list.push(a);
    byDelivery.set(a.deliveryId, list);
  }
  return byDelivery;
}

/** One page of an endpoint's deliveries, newest first, each with its attempts. */
export async function listDeliveries(db: Db, viewer: Viewer, endpointId: string, query: PageRequest) {
  const page = keyset("webhook-deliveries", webhookDeliveries, query, "desc");
  const rows = await asViewer(db, viewer, async (tx) => {
    await findEndpoint(tx, endpointId);
    const found = await tx
      .select({ delivery: webhookDeliveries, eventType: webhookEvents.type, position: page.position })
      .from(webhookDeliveries)
      .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
      .where(and(eq(webhookDeliveries.endpointId, endpointId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.take);
    const attempts = await attemptsOf(
      tx,
      found.map((r) => r.delivery.id),
    );
    return found.map((r) => ({
      row: { delivery: r.delivery, eventType: r.eventType, attempts: attempts.get(r.delivery.id) ?? [] },
      position: r.position,
    }));
  });
  return { rows, page };
}

/**
 * Sends a delivery again, whatever its status (a succeeded one too, as Svix's resend does): due now,
 * `replays` + 1, its attempt count unchanged. `endpointId`, when given, must be the delivery's.
 * Refused while the endpoint is disabled (the engine would cancel it again at once).
 */
export async function retryDelivery(
  db: Db,
  env: Pick<Bindings, "EVENTS_QUEUE">,
  viewer: Viewer,
  deliveryId: string,
  endpointId?: string,
): Promise<{ before: WebhookDelivery; after: DeliveryView }> {
  const found = await asViewer(db, viewer, async (tx) => {
    const [row] = await tx
      .select({ delivery: webhookDeliveries, enabled: webhookEndpoints.enabled })
      .from(webhookDeliveries)
      .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
      .where(
        and(
          eq(webhookDeliveries.id, deliveryId),
          endpointId === undefined ? undefined : eq(webhookDeliveries.endpointId, endpointId),
        ),
      );
    return row;
  });
  if (!found) throw deliveryNotFound();
  if (!found.enabled)
    throw new GatewayError("conflict", "The webhook endpoint is disabled; enable it before retrying.");
  // The tenant role only reads deliveries: ownership is proven above, under its RLS.
  const [updated] = await db
    .update(webhookDeliveries)
    .set({
      status: "pending",
      nextAttemptAt: sql`now()`,
      // A claim left by an attempt that died must not hold the retry back.
      claimedUntil: null,
      replays: sql`${webhookDeliveries.replays} + 1`,
      updatedAt: sql`now()`,
    })
    .where(eq(webhookDeliveries.id, deliveryId))
    .returning({ id: webhookDeliveries.id });
  if (!updated) throw deliveryNotFound();
  await dispatchDeliveries(env, [deliveryId]);
  const [after] = await deliveryViews(db, [deliveryId]);
  if (!after) throw deliveryNotFound();
  return { before: found.delivery, after };
}

/**
 * The dead-letter store: deliveries whose retries are exhausted, newest death first (optionally of
 * one tenant), with the event type, the endpoint's URL and every attempt. Operator only.
 */
export async function listDeadLetters(db: Db, tenantId: string | undefined, query: PageRequest) {
  const page = keyset(
    "webhook-dead-letters",
    { createdAt: webhookDeliveries.updatedAt, id: webhookDeliveries.id },
    query,
    "desc",
  );
  const found = await db
    .select({
      delivery: webhookDeliveries,
      eventType: webhookEvents.type,
      endpointUrl: webhookEndpoints.url,
      position: page.position,
    })
    .from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
    .where(
      and(
        eq(webhookDeliveries.status, "dead"),
        tenantId === undefined ? undefined : eq(webhookDeliveries.tenantId, tenantId),
        page.where,
      ),
    )
    .orderBy(...page.orderBy)
    .limit(page.take);
  const attempts = await attemptsOf(
    db,
    found.map((r) => r.delivery.id),
  );
  const rows = found.map((r) => ({
    row: {
      delivery: r.delivery,
      eventType: r.eventType,
      endpointUrl: r.endpointUrl,
      attempts: attempts.get(r.delivery.id) ?? [],
    } satisfies DeadLetterView,
    position: r.position,
  }));
  return { rows, page };
}
