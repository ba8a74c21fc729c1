/**
 * Monthly billing periods as Stripe counts them: a period ends on the anchor's day of the month at
 * the anchor's time of day, clamped to the month's last day (an anchor on the 31st ends on the 30th
 * in a 30-day month, and on the 31st again in the next 31-day one).
 */

/** The end of the `months`-th period after `anchor` (ms since the epoch). */
export function addMonths(anchor: number, months: number): number {
  const d = new Date(anchor);
  const first = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1);
  const month = new Date(first);
  const lastDay = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 0)).getUTCDate();
  return (
    Date.UTC(month.getUTCFullYear(), month.getUTCMonth(), Math.min(d.getUTCDate(), lastDay)) +
    (anchor - Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()))
  );
}

/**
 * The first period end after `now`, counting monthly from a known period end (`knownEnd`, the one
 * Stripe reported at the last sync): a stored end goes stale as periods roll over.
 */
export function nextPeriodEnd(knownEnd: number, now: number): number {
  let months = 0;
  while (addMonths(knownEnd, months) <= now) months++;
  return addMonths(knownEnd, months);
}
