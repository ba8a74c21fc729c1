/**
 * Bench-only: the gateway's `USAGE_QUEUE` binding as a Miniflare wrapped binding around the real
 * queue producer (`QUEUE`). Before each send it asks the bench's control service (`CONTROL`, a
 * function in bench/workers-server.ts) whether sends fail right now — the fault case turns that on
 * for a while, then off — and reports what it sent, so the bench can count queue messages per
 * proxied request. The Worker's code is unchanged: it sees a Queue that refuses, as a real one can.
 */

/** @param {{ QUEUE: Queue, CONTROL: Fetcher }} env */
export default function wrapQueue(env) {
  /** @param {number} messages @param {number} events */
  async function admit(messages, events) {
    const res = await env.CONTROL.fetch("http://control/send", {
      method: "POST",
      body: JSON.stringify({ messages, events }),
    });
    const { fail } = await res.json();
    if (fail) throw new Error("Queue send failed: injected by the bench's fault case");
  }
  const eventsIn = (body) => (Array.isArray(body?.events) ? body.events.length : 1);
  return {
    async send(body, options) {
      await admit(1, eventsIn(body));
      return env.QUEUE.send(body, options);
    },
    async sendBatch(messages, options) {
      const list = [...messages];
      await admit(
        list.length,
        list.reduce((n, m) => n + eventsIn(m.body), 0),
      );
      return env.QUEUE.sendBatch(list, options);
    },
  };
}
