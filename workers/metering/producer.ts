/**
 * Sends a usage event to the queue. Called from `waitUntil` after the response is on its way:
 * the client never waits for metering. The event is validated here, so a malformed event is a bug
 * caught at the source, not a poison message downstream.
 */

import { log } from "../log";
import { type UsageEvent, UsageEventSchema } from "./usage-event";

export async function sendUsageEvent(queue: Queue<UsageEvent>, event: UsageEvent): Promise<void> {
  const parsed = UsageEventSchema.safeParse(event);
  if (!parsed.success) {
    log.error("usage event rejected by schema", { request_id: event.id, issues: parsed.error.issues });
    return;
  }
  try {
    await queue.send(parsed.data, { contentType: "json" });
  } catch (error) {
    log.error("usage event not queued", { request_id: event.id, error: String(error) });
  }
}
