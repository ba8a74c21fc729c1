/**
 * The headers of one webhook attempt, per Standard Webhooks: `webhook-id` (the event id, the same on
 * every attempt, so a receiver dedupes retries), `webhook-timestamp` (this attempt, in seconds) and
 * `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`). While a rotated-out secret
 * is still valid both signatures are sent, new first, so a receiver that has not switched yet keeps
 * verifying. Signed with the `standardwebhooks` reference library, the same one receivers verify with.
 */
import { Webhook } from "standardwebhooks";

/** Who is calling, for the receiver's logs. */
export const WEBHOOK_USER_AGENT = "edge-gateway-webhooks/1.0";

/** The signing side of an endpoint. */
export interface SigningSecrets {
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: Date | null;
}

/** The secrets an attempt at `now` is signed with: the current one, then the previous while it is valid. */
export function activeSecrets(endpoint: SigningSecrets, now: Date): string[] {
  const previousValid =
    endpoint.previousSecret !== null &&
    endpoint.previousSecretUntil !== null &&
    endpoint.previousSecretUntil.getTime() > now.getTime();
  return previousValid ? [endpoint.secret, endpoint.previousSecret as string] : [endpoint.secret];
}

/** The request headers of an attempt at `now` of event `eventId` with `body`. */
export function webhookHeaders(
  eventId: string,
  body: string,
  endpoint: SigningSecrets,
  now: Date,
): Record<string, string> {
  const signatures = activeSecrets(endpoint, now).map((secret) =>
    new Webhook(secret).sign(eventId, now, body),
  );
  return {
    "content-type": "application/json",
    "user-agent": WEBHOOK_USER_AGENT,
    "webhook-id": eventId,
    "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
    "webhook-signature": signatures.join(" "),
  };
}
