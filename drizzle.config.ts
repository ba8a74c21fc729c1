import { defineConfig } from "drizzle-kit";

/** drizzle-kit reads the schema modules and writes SQL migrations; they are applied from Node (dev/migrate.ts). */
export default defineConfig({
  dialect: "postgresql",
  schema: "./schema/index.ts",
  out: "./schema/migrations",
});
