/**
 * In-flight slots: which of a tenant's requests are at a route's origin right now, the tenant
 * object's side of fair shedding (README "Fair shedding"). Only a request admitted while its route
 * is degraded takes one, with the most its tenant may hold (its fair share, decided by the edge):
 * admission refuses it (`overloaded`) when the tenant already holds that many, before anything is
 * charged. A slot ends when the edge releases it after the response, or when its lease lapses
 * (origin timeout + margin), so a lost release never holds capacity for longer than one lease.
 *
 * Pure and in memory, on purpose: a slot lives for one origin round trip at most, so writing it to
 * SQLite would add a write per shed-mode request for state that is stale by the time an evicted
 * object restarts. An object that restarts mid-flood forgets its slots: for at most one lease its
 * tenant may hold up to twice its share.
 */

/** What a request on a degraded route asks the tenant object for. */
export interface SlotRequest {
  /** The route (prefix) whose origin the slot is at. */
  route: string;
  /** The most slots the tenant may hold on the route, this one included (its fair share). */
  max: number;
  /** How long the slot holds without a release. */
  leaseMs: number;
}

export class Slots {
  /** route → slot id → lease end (epoch ms). */
  private readonly routes = new Map<string, Map<string, number>>();

  /** Takes slot `id` on the route if the tenant holds fewer than `max` there at `now`; false = at its share. */
  acquire(request: SlotRequest, id: string, now: number): boolean {
    const held = this.live(request.route, now);
    if (held.size >= request.max) return false;
    held.set(id, now + request.leaseMs);
    return true;
  }

  /** Ends a slot; false when it was not held (released already, or lapsed and dropped). */
  release(route: string, id: string): boolean {
    const held = this.routes.get(route);
    if (!held?.delete(id)) return false;
    if (held.size === 0) this.routes.delete(route);
    return true;
  }

  /** Slots held on the route at `now`. */
  held(route: string, now: number): number {
    return this.live(route, now).size;
  }

  /** The route's slots, lapsed ones dropped on the way (a map the size of the tenant's share). */
  private live(route: string, now: number): Map<string, number> {
    let held = this.routes.get(route);
    if (!held) {
      held = new Map();
      this.routes.set(route, held);
    }
    for (const [id, until] of held) if (until <= now) held.delete(id);
    return held;
  }
}
