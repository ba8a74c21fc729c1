/** CLI: `tsx scripts/migrate.ts` applies `schema/migrations` to the database in `DATABASE_URL`. */
import { migrate } from "../dev/migrate";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/postgres)");
  process.exit(1);
}
try {
  await migrate(url);
  console.log(`Migrations applied to ${new URL(url).host}${new URL(url).pathname}`);
} catch (err) {
  console.error("Migration failed:", err instanceof Error ? err.message : err);
  process.exit(1);
}
