/**
 * One-time codes that open a portal session (schema/portal-codes.ts): the operator's links, and
 * the sign-up / sign-in magic links. A code is spent in the statement that checks it, so one link
 * makes at most one session however often (or however concurrently) it is opened. Unknown, spent
 * and expired codes get the same answer: null.
 */
import { and, eq, gt, isNull } from "drizzle-orm";
import { type PortalCode, portalCodes } from "../../schema";
import type { Db, Tx } from "../shared/db";
import { newId } from "../shared/ids";
import { hashSecretToken, isWellFormedToken, newSecretToken } from "./secret-token";

/** How long an operator-minted link (and a magic link) can be opened. */
export const CODE_TTL_MS = 15 * 60 * 1000;

/** Makes a code; returns its plaintext (to put in a URL, once), when it expires, and its row's id. */
export async function mintCode(
  db: Db | Tx,
  input: Pick<PortalCode, "purpose" | "tenantId"> & { email?: string | null },
  now = Date.now(),
): Promise<{ code: string; expiresAt: Date; id: string }> {
  const code = newSecretToken();
  const expiresAt = new Date(now + CODE_TTL_MS);
  const id = newId("pcd", now);
  await db.insert(portalCodes).values({
    id,
    codeHash: await hashSecretToken(code),
    purpose: input.purpose,
    tenantId: input.tenantId,
    email: input.email ?? null,
    createdAt: new Date(now),
    expiresAt,
  });
  return { code, expiresAt, id };
}

/** Spends a code: the row it was, or null when it is unknown, already used or expired. */
export async function redeemCode(db: Db, code: string, now = Date.now()): Promise<PortalCode | null> {
  if (!isWellFormedToken(code)) return null;
  const [row] = await db
    .update(portalCodes)
    .set({ usedAt: new Date(now) })
    .where(
      and(
        eq(portalCodes.codeHash, await hashSecretToken(code)),
        isNull(portalCodes.usedAt),
        gt(portalCodes.expiresAt, new Date(now)),
      ),
    )
    .returning();
  return row ?? null;
}
