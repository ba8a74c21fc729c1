/**
 * Small pieces the console's pages share: number, rate and time formatting, the status badge, and
 * the notice a form's 303 redirect asks for (`?notice=<code>`: a fixed message per code, so the
 * query string never puts text of its own on the page).
 */
import type { Context } from "hono";
import type { AppEnv } from "../../env";
import { Notice } from "../layout";

/** An integer with thousands separators (en-US, fixed, so pages and tests agree). */
export const count = (n: number): string => n.toLocaleString("en-US");

/** `part / whole` as a percentage with one decimal, or an en dash when nothing was counted. */
export function rate(part: number, whole: number): string {
  return whole === 0 ? "–" : `${((100 * part) / whole).toFixed(1)} %`;
}

/** Milliseconds, or an en dash for none. */
export const ms = (value: number | null): string => (value === null ? "–" : `${value} ms`);

/** An instant as `YYYY-MM-DD HH:MM UTC`, or an en dash. */
export function utc(value: Date | string | number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "–";
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** The start of the UTC day `at` falls in. */
export const utcDay = (at: number): Date => new Date(Math.floor(at / 86_400_000) * 86_400_000);

/** A tenant status as a badge (class and text, never colour alone). */
export const StatusBadge = (props: { status: string }) => (
  <span class={`badge badge-${props.status}`}>{props.status.replace("_", " ")}</span>
);

/** The console's outcome messages, by the code a redirect carries. */
export const NOTICES = {
  plan: "Plan changed.",
  overrides: "Limit overrides saved.",
  suspended: "Tenant suspended.",
  reinstated: "Tenant reinstated.",
  credits: "Credit adjustment recorded.",
  revoked: "Key revoked.",
  synced: "Billing sync run again.",
  replayed: "Dead letter replayed to the usage queue.",
  retried: "Stripe report queued again.",
  webhook_replayed: "Webhook delivery queued again.",
} as const;

export type NoticeCode = keyof typeof NOTICES;

/** The notice a redirect asked for, if it names one. */
export function RedirectNotice(props: { c: Context<AppEnv> }) {
  const code = props.c.req.query("notice");
  if (!code || !Object.hasOwn(NOTICES, code)) return null;
  return <Notice kind="ok">{NOTICES[code as NoticeCode]}</Notice>;
}
