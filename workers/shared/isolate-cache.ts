/**
 * A bounded, TTL'd in-memory cache that lives as long as the isolate. It exists so that a warm
 * key costs 0 KV reads on the hot path. Entries are per isolate (Cloudflare runs many), so a
 * cached value can be up to `ttlMs` stale here: revocations must not rely on it (the tenant's
 * Durable Object is the authority for those).
 *
 * Misses are cached too (`negativeTtlMs`, shorter) so a flood of unknown keys doesn't turn into a
 * flood of KV reads. Insertion-ordered Map → evicting the oldest entry is O(1).
 */
export class IsolateCache<V> {
  private readonly entries = new Map<string, { value: V | null; expiresAt: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
  ) {}

  /** `undefined` = not cached; `null` = cached miss. */
  get(key: string, now: number = Date.now()): V | null | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V | null, now: number = Date.now()): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expiresAt: now + (value === null ? this.negativeTtlMs : this.ttlMs) });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
