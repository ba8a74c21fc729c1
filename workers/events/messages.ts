/**
 * What travels on the events queue (`gateway-events`, binding EVENTS_QUEUE):
 * - `deliver`: make the next attempt of one webhook delivery (workers/events/ consumer);
 * - `events`: events decided outside Postgres (the tenant object's usage thresholds), to be stored
 *   and fanned out to the tenant's endpoints. Their ids are fixed where they were decided, so a
 *   redelivered message stores nothing twice.
 */
import type { NewEvent } from "./catalog";

export interface DeliverMessage {
  kind: "deliver";
  deliveryId: string;
}

export interface EventsMessage {
  kind: "events";
  /** `at` travels as an ISO string. */
  events: Array<Omit<NewEvent, "at"> & { id: string; at: string }>;
}

export type EventsQueueMessage = DeliverMessage | EventsMessage;

/** The events queue's name in wrangler.toml: `queue()` in workers/index.ts routes its batches here. */
export const EVENTS_QUEUE_NAME = "gateway-events";
