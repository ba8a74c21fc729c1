/**
 * Cursor pagination for every list endpoint of the control plane: `limit` (default 50, at most 200),
 * an opaque `cursor`, and `next_cursor` (null on the last page).
 *
 * Keyset, not offset: rows are ordered by (created_at, id) and a cursor is the position of the last
 * row returned, at Postgres's microsecond precision (a JS Date's milliseconds would repeat or skip
 * rows created in the same millisecond). Rows created between two pages neither shift nor repeat
 * the rows already listed. A cursor names its list, so one list's cursor is refused by another.
 */
import { z } from "@hono/zod-openapi";
import { type AnyColumn, asc, desc, type SQL, sql } from "drizzle-orm";
import { GatewayError } from "../errors";

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

/** The `limit` and `cursor` query parameters. */
export const PageQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIMIT)
    .default(DEFAULT_LIMIT)
    .openapi({ description: `Items per page, 1-${MAX_LIMIT} (default ${DEFAULT_LIMIT}).` }),
  cursor: z
    .string()
    .max(512)
    .optional()
    .openapi({ description: "`next_cursor` of the previous page; omit for the first page." }),
});

/** A page of `item`s: `{ data, next_cursor }`. */
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({
    data: z.array(item),
    next_cursor: z
      .string()
      .nullable()
      .openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  });

interface Position {
  us: string;
  id: string;
}

const encode = (list: string, p: Position): string =>
  btoa(JSON.stringify([list, p.us, p.id]))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

function decode(list: string, cursor: string): Position {
  try {
    const parsed: unknown = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
    if (
      Array.isArray(parsed) &&
      parsed.length === 3 &&
      parsed[0] === list &&
      typeof parsed[1] === "string" &&
      /^-?\d{1,19}$/.test(parsed[1]) &&
      typeof parsed[2] === "string" &&
      parsed[2].length <= 64
    ) {
      return { us: parsed[1], id: parsed[2] };
    }
  } catch {
    // fall through: malformed
  }
  throw new GatewayError("validation_failed", "The cursor is not one this list returned.", {
    errors: [{ path: "cursor", message: "malformed cursor" }],
  });
}

/**
 * The pieces of one keyset page over (`createdAt`, `id`): select `position` next to the row, apply
 * `where` and `orderBy`, fetch `take` rows, and hand them to `page`. Either may be an SQL expression
 * instead of a column (the audit trail's id is its chain and seq).
 */
export function keyset(
  list: string,
  columns: { createdAt: AnyColumn | SQL; id: AnyColumn | SQL },
  query: { limit: number; cursor?: string | undefined },
  order: "asc" | "desc",
) {
  const position = sql<string>`((extract(epoch from ${columns.createdAt}) * 1000000)::bigint)::text`;
  const at = query.cursor === undefined ? null : decode(list, query.cursor);
  const where: SQL | undefined =
    at === null
      ? undefined
      : sql`(((extract(epoch from ${columns.createdAt}) * 1000000)::bigint), ${columns.id}) ${sql.raw(
          order === "asc" ? ">" : "<",
        )} (${at.us}::bigint, ${at.id})`;
  const dir = order === "asc" ? asc : desc;
  return {
    position,
    where,
    orderBy: [dir(columns.createdAt), dir(columns.id)],
    take: query.limit + 1,
    /** The rows of this page (mapped by `out`) and the cursor of the next one. */
    page<R, O>(rows: { row: R; position: string }[], out: (row: R) => O, id: (row: R) => string) {
      const shown = rows.slice(0, query.limit);
      const last = shown[shown.length - 1];
      return {
        data: shown.map((r) => out(r.row)),
        next_cursor:
          rows.length > query.limit && last ? encode(list, { us: last.position, id: id(last.row) }) : null,
      };
    },
  };
}
