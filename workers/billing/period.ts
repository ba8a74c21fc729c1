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

/** A billing period, [start, end) in ms since the epoch. */
export interface Period {
  start: number;
  end: number;
}

/**
 * The subscription period around `now`, counted monthly from a known period end. The start is the
 * period end before it (Stripe starts each period where the last one ended); for the period that
 * ends at `knownEnd` itself, a month before it (`knownEnd` alone does not tell a clamped anchor —
 * the 31st shown as the 28th — so that one start may be up to three days late after February).
 */
export function subscriptionPeriod(knownEnd: number, now: number): Period {
  let months = 0;
  while (addMonths(knownEnd, months) <= now) months++;
  return { start: addMonths(knownEnd, months - 1), end: addMonths(knownEnd, months) };
}

/**
 * The calendar month (UTC) around `now`: the period of a tenant with no subscription yet, the same
 * window as the monthly quota. A subscription made later anchors its periods at its own start.
 */
export function calendarMonth(now: number): Period {
  const d = new Date(now);
  return {
    start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}
