/**
 * The queue consumers' retry backoff (usage, usage DLQ, events): a message that failed for a
 * reason outside it (Postgres down) waits 2, 4, 8 … seconds, capped at 5 minutes, between tries.
 */
const MAX_BACKOFF_S = 300;

/** Seconds before retry number `attempts` of a queue message. */
export const backoffSeconds = (attempts: number) => Math.min(MAX_BACKOFF_S, 2 ** Math.max(1, attempts));
