/**
 * Applies the drizzle-kit migrations in `schema/migrations` from Node (never from inside workerd), over
 * node-postgres. Works against PGlite's socket server and a real PostgreSQL alike.
 */
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate as runMigrations } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

const MIGRATIONS_FOLDER = fileURLToPath(new URL("../schema/migrations", import.meta.url));

/** Brings the database at `url` up to the latest migration; already-applied migrations are skipped. */
export async function migrate(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await runMigrations(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.end();
  }
}
