/**
 * Keeps each connection's extended-protocol query whole on the embedded PGlite's socket server
 * (the workaround for a multiplexing fault of @electric-sql/pglite-socket 0.2.17, pinned here).
 *
 * The upstream behaviour: the socket server runs every connection's messages on PGlite's single
 * backend, one message at a time from one shared queue, and stays with one connection only while
 * an explicit transaction is open (`db.isInTransaction()`). A parameterised query is several
 * messages — Parse, Bind, Describe, Execute, Flush, Sync — that share the backend's one unnamed
 * statement and portal. When several connections' queries are queued at once (typically all
 * waiting behind a third connection's transaction), the queue hands their messages out in turn:
 * Parse A, Parse B, Bind A, Bind B, … so A binds B's statement, gets B's rows, no rows, or an error
 * ("portal does not exist", "bind message supplies 2 parameters, but prepared statement requires 3").
 * A lookup that finds nothing is how "No such tenant" reached a tenant that existed.
 *
 * The fix: the queue is handed a view of the database whose `isInTransaction()` is also true from a
 * connection's first extended-protocol message until its Sync, so the queue's own rule ("only the
 * last connection while a transaction is open") keeps the query whole. If that connection hangs up
 * mid-query, the queue's clean-up (a ROLLBACK) first ends the query with a Sync.
 */
import type { PGlite } from "@electric-sql/pglite";
import type { PGLiteSocketServer } from "@electric-sql/pglite-socket";

/** Message types of an extended-protocol query before its Sync: Parse, Bind, Describe, Execute, Flush, Close. */
const QUERY_PARTS = new Set([..."PBDEHC"].map((c) => c.charCodeAt(0)));
const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]);

/** The socket server's private queue, as far as this workaround relies on it (pglite-socket 0.2.17). */
interface QueryQueue {
  db: PGlite;
}

/** Installs the workaround on a server created for `db` and not yet serving. */
export function keepQueriesWhole(server: PGLiteSocketServer, db: PGlite): void {
  const queue = (server as unknown as { queryQueue?: QueryQueue }).queryQueue;
  if (queue?.db !== db) {
    throw new Error("@electric-sql/pglite-socket internals changed: re-check dev/pglite-batches.ts");
  }
  let queryOpen = false;
  const execProtocolRawStream: PGlite["execProtocolRawStream"] = async (message, options) => {
    try {
      return await db.execProtocolRawStream(message, options);
    } finally {
      queryOpen = QUERY_PARTS.has(message[0] ?? 0);
    }
  };
  const exec: PGlite["exec"] = async (query, options) => {
    if (queryOpen) {
      queryOpen = false;
      await db.runExclusive(() => db.execProtocolRawStream(SYNC, { onRawData: () => {} }));
    }
    return await db.exec(query, options);
  };
  queue.db = new Proxy(db, {
    get(target, property) {
      if (property === "isInTransaction") return () => queryOpen || target.isInTransaction();
      if (property === "execProtocolRawStream") return execProtocolRawStream;
      if (property === "exec") return exec;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
