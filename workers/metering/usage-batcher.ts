/**
 * The producer's pure core: packs items into batches bounded in bytes and flushes each batch after
 * at most `maxDelayMs` (or at once when it is full). `add` returns the promise of the flush that
 * carries the item, so a caller that hands it to `waitUntil` keeps its isolate alive until its own
 * item has been delivered (or spooled): nothing is left in memory when the isolate goes away.
 *
 * No I/O and no clock of its own: `schedule` and `deliver` are injected (timers in the Worker,
 * a fake clock in the unit tests).
 */

export interface BatcherOptions<T> {
  /** Upper bound of a batch's serialized size, envelope included. */
  maxBytes: number;
  /** A batch is flushed at most this long after its first item arrived. */
  maxDelayMs: number;
  /** Bytes of the envelope around the items (`{"v":2,"events":[]}`). */
  overheadBytes: number;
  /** Serialized size of one item. */
  sizeOf(item: T): number;
  /** Sends one batch. Should not reject; a rejection is swallowed so callers' waitUntil settle. */
  deliver(items: T[]): Promise<void>;
  /** Runs `fn` after `ms` (setTimeout in the Worker). */
  schedule(fn: () => void, ms: number): void;
}

interface Pending<T> {
  items: T[];
  bytes: number;
  started: boolean;
  done: Promise<void>;
  start: () => void;
}

export class Batcher<T> {
  private pending: Pending<T> | null = null;

  constructor(private readonly opts: BatcherOptions<T>) {}

  /** Items waiting for their flush (not yet handed to `deliver`). */
  get buffered(): number {
    return this.pending?.items.length ?? 0;
  }

  /** Adds `item`; resolves once the batch that carries it has been delivered. */
  add(item: T): Promise<void> {
    const size = this.opts.sizeOf(item) + 1; // + the comma between items
    if (this.pending && this.pending.bytes + size > this.opts.maxBytes) this.pending.start();
    const batch = this.pending ?? this.open();
    batch.items.push(item);
    batch.bytes += size;
    if (batch.bytes >= this.opts.maxBytes) batch.start();
    return batch.done;
  }

  /** Flushes what is buffered now (e.g. when the caller knows no more items are coming). */
  flush(): Promise<void> {
    const batch = this.pending;
    if (!batch) return Promise.resolve();
    batch.start();
    return batch.done;
  }

  private open(): Pending<T> {
    let resolve!: (p: Promise<void>) => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const batch: Pending<T> = {
      items: [],
      bytes: this.opts.overheadBytes,
      started: false,
      done,
      start: () => {
        if (batch.started) return;
        batch.started = true;
        if (this.pending === batch) this.pending = null;
        resolve(this.opts.deliver(batch.items).catch(() => {}));
      },
    };
    this.pending = batch;
    this.opts.schedule(batch.start, this.opts.maxDelayMs);
    return batch;
  }
}
