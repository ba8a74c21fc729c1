/**
 * Prefixed, time-sortable ids (`req_`, `key_`, `ten_`, `plan_`, `bsync_`, `cadj_`, `wss_`, `pcd_`, `evt_`, `whep_`, `dlv_`): 48-bit millisecond timestamp +
 * 80 random bits in Crockford base32 (ULID layout), so ids sort by creation time.
 */

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export type IdPrefix =
  | "req"
  | "key"
  | "ten"
  | "plan"
  | "bsync"
  | "cadj"
  | "wss"
  | "pcd"
  | "evt"
  | "whep"
  | "dlv";

export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (let i = 0; i < 16; i++) rand += ALPHABET[(random[i] as number) & 31];
  return `${prefix}_${time}${rand}`.toLowerCase();
}
