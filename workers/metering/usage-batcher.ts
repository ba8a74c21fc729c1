/**
 * The producer's pure core: packs items into batches bounded in bytes and flushes each batch at its
 * deadline — at most `maxDelayMs` after its first item — or at once when it is full. `add` returns a
 * promise that settles once the batch carrying the item has been delivered, so a caller that hands
 * it to `waitUntil` keeps its isolate alive until its own item is delivered (or spooled): nothing is
 * left in memory when the isolate goes away.
 *
 * Why every caller looks with its own timer instead of awaiting one shared promise: in workerd,
 * timers, I/O and the promise behind `waitUntil` belong to the request that created them. A timer or
 * send of a cancelled request goes with it, and a shared promise's continuations are cancelled once
 * the request that created it is gone (while it lives, resolving across requests measured slower
 * than a timer per request: docs/BENCHMARKS.md). So the batch is plain state; each caller's own
 * timer flushes it when the batch's deadline comes (whoever comes first), then looks whether it
 * has been delivered and resolves its own promise in its own request. If a started delivery has not settled
 * `rescueAfterMs` later (its request died mid-send), one waiter delivers the batch again from its
 * own request (a duplicate is harmless: the consumer stores each event id once).
 *
 * A request kept waiting costs the runtime more the longer it waits (docs/BENCHMARKS.md, "What
 * metering costs the request path"), so every caller wakes at its batch's deadline, not
 * `maxDelayMs` after its own item: the first caller then flushes, the others look a little longer
 * after it than a delivery takes (the recent average, at least `pollMs`), by when it has usually
 * been delivered. Under heavy load a batch is full by size before `maxDelayMs`; the next one's
 * deadline is then the time that took, so its callers wake about when it goes. If the load drops,
 * that deadline flushes a smaller batch, and the next one waits `maxDelayMs` again.
 *
 * No I/O and no clock of its own: `schedule`, `now` and `deliver` are injected (timers in the Worker,
 * a fake clock in the unit tests).
 */

export interface BatcherOptions<T> {
  /** Upper bound of a batch's serialized size, envelope included. */
  maxBytes: number;
  /** A batch is flushed at most this long after its first item arrived. */
  maxDelayMs: number;
  /** How often, at least, a waiting caller looks whether its batch has been delivered. */
  pollMs: number;
  /** A started delivery not settled after this long is presumed lost with its request and redone. */
  rescueAfterMs: number;
  /** Bytes of the envelope around the items (`{"v":2,"events":[]}`). */
  overheadBytes: number;
  /** Serialized size of one item. */
  sizeOf(item: T): number;
  /** Sends one batch. Should not reject; a rejection is swallowed so callers' waitUntil settle. */
  deliver(items: T[]): Promise<void>;
  /** Runs `fn` after `ms` (setTimeout in the Worker). */
  schedule(fn: () => void, ms: number): void;
  /** The clock `schedule` runs on, in ms (Date.now in the Worker). */
  now(): number;
}

interface Pending<T> {
  items: T[];
  bytes: number;
  openedAt: number;
  /** When its (first) delivery started. */
  sentAt: number;
  /** When the batch goes unless it fills first. */
  deadline: number;
  started: boolean;
  rescued: boolean;
  settled: boolean;
}

export class Batcher<T> {
  private pending: Pending<T> | null = null;
  /** How long the last batch took to fill; null when it went by its deadline instead. */
  private fillMs: number | null = null;
  /** How long a delivery takes (moving average); null before the first. */
  private sendMs: number | null = null;

  constructor(private readonly opts: BatcherOptions<T>) {}

  /** Items waiting for their flush (not yet handed to `deliver`). */
  get buffered(): number {
    return this.pending?.items.length ?? 0;
  }

  /** Adds `item`; resolves once the batch that carries it has been delivered. */
  add(item: T): Promise<void> {
    const size = this.opts.sizeOf(item) + 1; // + the comma between items
    if (this.pending && this.pending.bytes + size > this.opts.maxBytes) this.filled(this.pending);
    const opened = this.pending === null;
    const batch = this.pending ?? this.open();
    batch.items.push(item);
    batch.bytes += size;
    if (batch.bytes >= this.opts.maxBytes) this.filled(batch);
    if (batch.started) return this.waitFor(batch, this.lookAfterMs());
    // The first caller flushes at the deadline; the others look once it has had time to go.
    const untilDeadline = Math.max(0, batch.deadline - this.opts.now());
    return this.waitFor(batch, opened ? untilDeadline : untilDeadline + this.lookAfterMs());
  }

  /**
   * How long after a delivery started its callers look: a quarter longer than one takes (so they
   * find it done, not just about to be), at least pollMs, at most a tenth of rescueAfterMs.
   */
  private lookAfterMs(): number {
    return Math.max(this.opts.pollMs, Math.min(1.25 * (this.sendMs ?? 0), this.opts.rescueAfterMs / 10));
  }

  /** Flushes what is buffered now (e.g. when the caller knows no more items are coming). */
  flush(): Promise<void> {
    const batch = this.pending;
    if (!batch) return Promise.resolve();
    this.start(batch);
    return this.waitFor(batch, this.lookAfterMs());
  }

  private open(): Pending<T> {
    const openedAt = this.opts.now();
    const batch: Pending<T> = {
      items: [],
      bytes: this.opts.overheadBytes,
      openedAt,
      sentAt: openedAt,
      deadline: openedAt + Math.min(this.fillMs ?? this.opts.maxDelayMs, this.opts.maxDelayMs),
      started: false,
      rescued: false,
      settled: false,
    };
    this.pending = batch;
    return batch;
  }

  /** The caller's own timer chain: flush the batch if nobody has, then poll until delivered. */
  private waitFor(batch: Pending<T>, firstMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const poll = () => {
        if (!batch.started) this.start(batch);
        else if (!batch.settled && !batch.rescued) {
          // Under way for rescueAfterMs: its request died mid-send. Redo it from here.
          if (this.opts.now() - batch.sentAt >= this.opts.rescueAfterMs) {
            batch.rescued = true;
            this.run(batch);
          }
        }
        if (batch.settled) resolve();
        else this.opts.schedule(poll, this.lookAfterMs());
      };
      this.opts.schedule(poll, firstMs);
    });
  }

  /** A full batch goes at once; how long it took to fill sets the next one's deadline. */
  private filled(batch: Pending<T>): void {
    this.fillMs = this.opts.now() - batch.openedAt;
    this.start(batch, true);
  }

  private start(batch: Pending<T>, full = false): void {
    if (batch.started) return;
    batch.started = true;
    // A batch that went before it filled: the load dropped, so the next one may wait maxDelayMs.
    if (!full) this.fillMs = null;
    if (this.pending === batch) this.pending = null;
    this.run(batch);
  }

  private run(batch: Pending<T>): void {
    const sentAt = this.opts.now();
    if (!batch.rescued) batch.sentAt = sentAt;
    this.opts
      .deliver(batch.items)
      .catch(() => {})
      .then(() => {
        batch.settled = true;
        const took = this.opts.now() - sentAt;
        this.sendMs = this.sendMs === null ? took : 0.7 * this.sendMs + 0.3 * took;
      });
  }
}
