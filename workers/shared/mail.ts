/**
 * The one way the Worker sends mail: an HTTP email API in Resend's shape, which Postmark-, SendGrid-
 * and SES-style relays can be fronted with and which the local dev mailbox (dev/mailbox.ts) speaks.
 *
 *   POST {MAIL_API_URL}/emails
 *   Authorization: Bearer {MAIL_API_KEY}
 *   Content-Type: application/json
 *   {"from": MAIL_FROM, "to": ["dev@example.com"], "subject": "…", "text": "…", "html": "…"}
 *   → 200 {"id": "…"}; an error is {"statusCode", "name", "message"} with a 4xx/5xx status.
 *
 * Unconfigured (no MAIL_API_KEY or MAIL_FROM), slow, unreachable or refusing: a value, never an
 * exception — the caller decides what the person sees (the sign-up page says "try again").
 */

import { configOf } from "../config";
import type { Bindings } from "../env";
import { log } from "../log";

/** How long the mail API may take to accept a message before the send counts as failed. */
export const MAIL_TIMEOUT_MS = 5_000;

/** One message to one recipient, in both plain text and HTML (clients show the one they prefer). */
export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** What became of a send: accepted (the API's message id), or why not. */
export type MailResult =
  | { ok: true; id: string | null }
  | { ok: false; reason: "unconfigured" | "timeout" | "unreachable" | "refused"; status?: number };

/** True when the mail API is configured (MAIL_API_KEY and MAIL_FROM set). */
export const mailConfigured = (env: Bindings): boolean => configOf(env).mail !== null;

/**
 * Hands one message to the mail API. Waits at most `timeoutMs`. Never logs the recipient or the
 * body (a magic link is a credential); a failure is logged with the API's status and error name.
 */
export async function sendMail(env: Bindings, mail: Mail, timeoutMs = MAIL_TIMEOUT_MS): Promise<MailResult> {
  const config = configOf(env).mail;
  if (!config) return { ok: false, reason: "unconfigured" };
  const url = `${config.apiUrl.replace(/\/+$/, "")}/emails`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${config.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        from: config.from,
        to: [mail.to],
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const timeout = error instanceof Error && error.name === "TimeoutError";
    log.warn("mail not sent", { reason: timeout ? "timeout" : "unreachable", error: String(error) });
    return { ok: false, reason: timeout ? "timeout" : "unreachable" };
  }
  const body = jsonObject(await res.text().catch(() => ""));
  if (!res.ok) {
    const name = typeof body.name === "string" ? body.name.slice(0, 64) : undefined;
    log.warn("mail not sent", { reason: "refused", status: res.status, error: name });
    return { ok: false, reason: "refused", status: res.status };
  }
  return { ok: true, id: typeof body.id === "string" ? body.id : null };
}

/** The API's answer as an object; anything else (HTML from a proxy, nothing) as an empty one. */
function jsonObject(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
