/**
 * The faults `stripe listen` (dev/stripe-listen.ts) can inject between Stripe's event list and the
 * Worker's webhook endpoint, and the pure plan that turns the events it reads, in creation order,
 * into the deliveries it makes, in delivery order. No I/O and no clock: the same seed and the same
 * events give the same deliveries, every run.
 *
 * - `duplicate`: a chosen event is delivered `times` times in all, back to back (same bytes).
 * - `reorder`: deliveries are held `window` at a time, then let go reversed or shuffled (seeded).
 * - `fail`: the first `attempts` delivery attempts of a chosen event fail locally as if the network
 *   had (the endpoint never sees them); `attempts` ≥ the forwarder's `maxAttempts` drops the event.
 * - `stale`: a chosen event is delivered again after `after` newer events.
 *
 * Which events a fault touches: `types` (default every type) and `rate` (the share of those,
 * default 1), drawn from a generator seeded with `seed` (default 1) in event order.
 */
import { z } from "zod";

const Selection = {
  /** Event types the fault applies to; absent = every type. */
  types: z.array(z.string().min(1)).min(1).optional(),
  /** Share (0–1) of the matching events it applies to; default 1 (all). */
  rate: z.number().min(0).max(1).optional(),
};

/** The faults, as options, the control API and `PUT /faults` take them. */
export const FaultsSchema = z
  .object({
    seed: z.number().int().optional(),
    duplicate: z
      .object({ ...Selection, times: z.number().int().min(2).max(100).optional() })
      .strict()
      .optional(),
    reorder: z
      .object({
        window: z.number().int().min(2).max(1000).optional(),
        order: z.enum(["reverse", "shuffle"]).optional(),
      })
      .strict()
      .optional(),
    fail: z
      .object({ ...Selection, attempts: z.number().int().min(1).max(1000).optional() })
      .strict()
      .optional(),
    stale: z
      .object({ ...Selection, after: z.number().int().min(1).max(1000).optional() })
      .strict()
      .optional(),
  })
  .strict();

export type Faults = z.infer<typeof FaultsSchema>;

/** The part of a Stripe event the plan looks at. */
export interface PlannedEvent {
  id: string;
  type: string;
}

/** One POST to make: `copy` 1 is the first delivery of the event; `failAttempts` fail locally first. */
export interface Delivery<E extends PlannedEvent = PlannedEvent> {
  event: E;
  copy: number;
  reason: "event" | "duplicate" | "stale";
  failAttempts: number;
}

/** Mulberry32: a small seeded generator of floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The delivery order for a stream of events under one set of faults. `admit` each event as it is
 * read (oldest first); it returns the deliveries due now. `release` lets go of everything held
 * (a reorder window not yet full, stale copies not yet due), e.g. on `flush()`.
 */
export class FaultPlan<E extends PlannedEvent = PlannedEvent> {
  private readonly random: () => number;
  private readonly held: Array<Delivery<E>> = [];
  private stale: Array<{ delivery: Delivery<E>; due: number }> = [];
  private readonly copies = new Map<string, number>();

  constructor(readonly faults: Faults = {}) {
    this.random = seededRandom(faults.seed ?? 1);
  }

  admit(event: E): Array<Delivery<E>> {
    const { duplicate, fail, stale } = this.faults;
    const out: Array<Delivery<E>> = [];
    const failAttempts = this.chosen(fail, event) ? (fail?.attempts ?? 1) : 0;
    out.push(this.delivery(event, "event", failAttempts));
    if (this.chosen(duplicate, event)) {
      for (let n = 1; n < (duplicate?.times ?? 2); n++) out.push(this.delivery(event, "duplicate", 0));
    }
    // Stale copies already waiting count this event as one newer than them.
    const due = this.stale.filter((s) => --s.due <= 0);
    this.stale = this.stale.filter((s) => s.due > 0);
    out.push(...due.map((s) => s.delivery));
    if (this.chosen(stale, event)) {
      this.stale.push({ delivery: this.delivery(event, "stale", 0), due: stale?.after ?? 2 });
    }
    return this.reordered(out);
  }

  release(): Array<Delivery<E>> {
    const out = [...this.permuted(this.held.splice(0)), ...this.stale.map((s) => s.delivery)];
    this.stale = [];
    return out;
  }

  private delivery(event: E, reason: Delivery["reason"], failAttempts: number): Delivery<E> {
    const copy = (this.copies.get(event.id) ?? 0) + 1;
    this.copies.set(event.id, copy);
    return { event, copy, reason, failAttempts };
  }

  /** Whether a fault applies to this event; draws from the generator only for matching types. */
  private chosen(selection: { types?: string[]; rate?: number } | undefined, event: E): boolean {
    if (!selection) return false;
    if (selection.types && !selection.types.includes(event.type)) return false;
    const rate = selection.rate ?? 1;
    return rate >= 1 || this.random() < rate;
  }

  private reordered(deliveries: Array<Delivery<E>>): Array<Delivery<E>> {
    const { reorder } = this.faults;
    if (!reorder) return deliveries;
    this.held.push(...deliveries);
    const window = reorder.window ?? 3;
    const out: Array<Delivery<E>> = [];
    while (this.held.length >= window) {
      out.push(...this.permuted(this.held.splice(0, window)));
    }
    return out;
  }

  private permuted(batch: Array<Delivery<E>>): Array<Delivery<E>> {
    if (this.faults.reorder?.order === "shuffle") {
      for (let i = batch.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [batch[i], batch[j]] = [batch[j] as Delivery<E>, batch[i] as Delivery<E>];
      }
      return batch;
    }
    return batch.reverse();
  }
}
