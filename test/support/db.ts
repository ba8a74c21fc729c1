/** The test database through the Worker's own client (workers/shared/db.ts), opened and closed around `fn`. */
import { env } from "cloudflare:workers";
import { openDb } from "../../workers/shared/db";

export type TestDb = ReturnType<typeof openDb>["db"];

export async function withDb<T>(fn: (db: TestDb) => Promise<T>): Promise<T> {
  const { db, close } = openDb(env);
  try {
    return await fn(db);
  } finally {
    await close();
  }
}
