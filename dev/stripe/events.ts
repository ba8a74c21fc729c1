/**
 * The Stripe stand-in's Events (api/events): every change worth a webhook is recorded as an Event
 * object whose `data.object` is a snapshot of the object at that moment (a late reader sees the old
 * state, as with real Stripe), and `GET /v1/events` lists them newest first. The stand-in neither
 * signs nor delivers webhooks: a forwarder (dev/stripe-listen.ts) polls this list, as `stripe listen`
 * does against Stripe.
 * Choice: `pending_webhooks` is 0 (no webhook endpoints are registered at the stand-in).
 */
import type { Account } from "./objects";
import {
  allowOnly,
  type Call,
  DEFAULT_STRIPE_VERSION,
  hash,
  integer,
  invalid,
  list,
  newId,
  noSuch,
  optString,
  type Params,
  paginate,
  type Reply,
} from "./wire";

/** Where and when something happens: the request that caused it, or none (the clock did). */
export interface Moment {
  account: Account;
  livemode: boolean;
  nowS: number;
  request: { id: string | null; idempotency_key: string | null };
}

export function momentOf(call: Call): Moment {
  return {
    account: call.account,
    livemode: call.livemode,
    nowS: call.nowS,
    request: { id: call.requestId, idempotency_key: call.idempotencyKey ?? null },
  };
}

/** A moment caused by the clock (a period's end, a payment retry), not by a request. */
export function clockMoment(account: Account, livemode: boolean, nowS: number): Moment {
  return { account, livemode, nowS, request: { id: null, idempotency_key: null } };
}

/** Records an event of `type` about `object` (snapshotted now); `before` gives `previous_attributes`. */
export function emit(at: Moment, type: string, object: unknown, before?: unknown): void {
  const snapshot = structuredClone(object);
  const previous = before === undefined ? undefined : previousAttributes(before, snapshot);
  at.account.stripeEvents.push({
    id: newId("evt", 24),
    object: "event",
    api_version: DEFAULT_STRIPE_VERSION,
    created: at.nowS,
    data: previous ? { object: snapshot, previous_attributes: previous } : { object: snapshot },
    livemode: at.livemode,
    pending_webhooks: 0,
    request: { ...at.request },
    type,
  });
}

/** The top-level fields of `before` whose value differs in `after`, with their old values. */
export function previousAttributes(before: unknown, after: unknown): Record<string, unknown> {
  const old = before as Record<string, unknown>;
  const now = after as Record<string, unknown>;
  const previous: Record<string, unknown> = {};
  for (const key of Object.keys(old)) {
    if (JSON.stringify(old[key]) !== JSON.stringify(now[key])) previous[key] = structuredClone(old[key]);
  }
  return previous;
}

export function retrieveEvent(call: Call, id: string): Reply {
  allowOnly(call.params, ["expand"]);
  const event = call.account.stripeEvents.find((e) => e.id === id);
  if (!event) throw noSuch("event", id, "id", 404);
  return { status: 200, body: event };
}

/**
 * `type` takes one type or a `*` wildcard (`invoice.*`); `types` up to 20 exact types; `created` an
 * integer or a hash of `gt`/`gte`/`lt`/`lte` (api/events/list).
 */
export function listEvents(call: Call): Reply {
  const p = call.params;
  allowOnly(p, [
    "type",
    "types",
    "created",
    "delivery_success",
    "limit",
    "starting_after",
    "ending_before",
    "expand",
  ]);
  const type = optString(p, "type");
  const types = list(p, "types");
  if (type !== undefined && types !== undefined)
    throw invalid("You may only specify one of these parameters: type, types.", { param: "types" });
  if (types && types.length > 20) throw invalid("types can have at most 20 entries.", { param: "types" });
  const typeOk = typeFilter(type, types);
  const createdOk = createdFilter(p);
  // A cursor is an event's place in the whole list, whether or not it passes the filters.
  const cursors = [optString(p, "starting_after"), optString(p, "ending_before")];
  const events = call.account.stripeEvents
    .filter((e) => cursors.includes(e.id) || (typeOk(e.type) && createdOk(e.created)))
    .reverse();
  return { status: 200, body: paginate(events, p, "/v1/events") };
}

function typeFilter(type: string | undefined, types: string[] | undefined): (t: string) => boolean {
  if (types) return (t) => types.includes(t);
  if (type === undefined) return () => true;
  if (!type.includes("*")) return (t) => t === type;
  const pattern = new RegExp(`^${type.split("*").map(escapeRegExp).join(".*")}$`);
  return (t) => pattern.test(t);
}

function createdFilter(p: Params): (created: number) => boolean {
  const raw = p.created;
  if (raw === undefined) return () => true;
  if (typeof raw === "string") {
    const at = integer(raw, "created");
    return (c) => c === at;
  }
  const range = hash(p, "created") ?? {};
  allowOnly(range, ["gt", "gte", "lt", "lte"], "created");
  const bound = (k: string) => {
    const v = optString(range, k, `created[${k}]`);
    return v === undefined ? undefined : integer(v, `created[${k}]`);
  };
  const [gt, gte, lt, lte] = [bound("gt"), bound("gte"), bound("lt"), bound("lte")];
  return (c) =>
    (gt === undefined || c > gt) &&
    (gte === undefined || c >= gte) &&
    (lt === undefined || c < lt) &&
    (lte === undefined || c <= lte);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
