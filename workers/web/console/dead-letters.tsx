/**
 * `GET /console/dead-letters`: what the pipeline could not deliver, and a way to send it again —
 * - dead letters (`dead_letters`, filled by the usage DLQ's consumer): what (tenants, event count,
 *   first and last event time), why (the consumer's reason, or retries exhausted), when; "Replay"
 *   re-sends the stored body to the usage queue (workers/metering/dead-letters.ts);
 * - failed Stripe reports (`billing_outbox` rows in state `failed`): tenant, hour, units, attempts,
 *   last error; "Retry" puts the row back in line (its id is Stripe's `identifier`: never billed twice);
 * - tenants whose billing sync failed, with the error and "Retry sync" (the tenant page's form);
 * - webhook deliveries whose retries are exhausted (the webhooks service's dead-letter store,
 *   workers/api/webhook-endpoints.ts); "Replay" sends one again as the admin API's retry does, and a
 *   refusal (its endpoint is disabled) is shown on the page as a notice.
 * Newest first, at most 100 of each.
 */
import { desc, eq, sql } from "drizzle-orm";
import type { Context, Hono } from "hono";
import { deadLetters, tenants } from "../../../schema";
import { retryAudit } from "../../api/webhook-audit";
import { listDeadLetters, retryDelivery } from "../../api/webhook-endpoints";
import { diff } from "../../audit/changes";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { eventsOf, replayDeadLetter, retryFailedReport } from "../../metering/dead-letters";
import { Notice, num, PostButton, TableHead } from "../layout";
import { consolePage } from "./console-page";
import { count, RedirectNotice, utc } from "./format";

const LIST = 100;

/** What a stored body says about itself: its tenants and the span of its events' times (it may be invalid). */
export function describeBody(body: unknown): {
  tenants: string[];
  first: string | null;
  last: string | null;
} {
  const tenantIds = new Set<string>();
  const times: number[] = [];
  for (const event of eventsOf(body)) {
    if (typeof event !== "object" || event === null) continue;
    const e = event as { tenantId?: unknown; ts?: unknown };
    if (typeof e.tenantId === "string") tenantIds.add(e.tenantId.slice(0, 64));
    const at = typeof e.ts === "string" ? Date.parse(e.ts) : Number.NaN;
    if (!Number.isNaN(at)) times.push(at);
  }
  return {
    tenants: [...tenantIds].sort(),
    first: times.length ? new Date(Math.min(...times)).toISOString() : null,
    last: times.length ? new Date(Math.max(...times)).toISOString() : null,
  };
}

/** The `id` field of a form (an id of ours: short, no control characters). */
async function formId(c: { req: { parseBody(): Promise<Record<string, unknown>> } }): Promise<string> {
  const id = (await c.req.parseBody()).id;
  if (typeof id !== "string" || id === "" || id.length > 200)
    throw new GatewayError("validation_failed", "Which one? The form names no id.");
  return id;
}

/** The row an empty table shows. */
const NoRows = (props: { columns: number }) => (
  <tr>
    <td colspan={props.columns} class="muted">
      None.
    </td>
  </tr>
);

/** The page; `refused` is why a replay was refused (shown as an error notice, with `status`). */
async function deadLettersPage(c: Context<AppEnv>, refused?: { reason: string; status: number }) {
  const db = c.var.db;
  const csrf = c.var.web?.csrf ?? "";
  const [letters, reports, syncs, webhooks] = await Promise.all([
    db.select().from(deadLetters).orderBy(desc(deadLetters.receivedAt), desc(deadLetters.id)).limit(LIST),
    db.execute<{
      id: string;
      tenant_id: string;
      slug: string;
      hour: string | Date;
      units: string;
      attempts: number;
      last_error: string | null;
    }>(sql`
      SELECT o.id, o.tenant_id, t.slug, o.hour, o.units, o.attempts, o.last_error
      FROM billing_outbox o JOIN tenants t ON t.id = o.tenant_id
      WHERE o.state = 'failed' ORDER BY o.hour DESC, o.id LIMIT ${LIST}`),
    db
      .select({
        id: tenants.id,
        slug: tenants.slug,
        error: tenants.billingError,
        updatedAt: tenants.updatedAt,
      })
      .from(tenants)
      .where(eq(tenants.billingSync, "failed"))
      .orderBy(desc(tenants.updatedAt))
      .limit(LIST),
    listDeadLetters(db, undefined, { limit: LIST }),
  ]);
  return consolePage(
    c,
    {
      title: "Dead letters",
      current: "/console/dead-letters",
      styles: ["/_static/console.css"],
      ...(refused ? { status: refused.status } : {}),
    },
    <>
      {refused ? <Notice kind="error">{refused.reason}</Notice> : <RedirectNotice c={c} />}
      <section class="card" aria-labelledby="letters-title">
        <h2 id="letters-title">Usage the queue could not store</h2>
        <div class="table-wrap">
          <table>
            <TableHead
              columns={["Received", "Tenants", num("Events"), "Event times", "Why", num("Replays"), "Action"]}
            />
            <tbody>
              {letters.length === 0 && <NoRows columns={7} />}
              {letters.map((d) => {
                const what = describeBody(d.body);
                return (
                  <tr data-dead-letter-id={d.id}>
                    <td>{utc(d.receivedAt)}</td>
                    <td class="mono">{what.tenants.length ? what.tenants.join(", ") : "–"}</td>
                    <td class="num">{count(d.events)}</td>
                    <td>
                      {utc(what.first)}
                      {what.last !== what.first && <> to {utc(what.last)}</>}
                    </td>
                    <td>{d.reason ?? "retries exhausted (Postgres unreachable)"}</td>
                    <td class="num">
                      {count(d.replays)}
                      {d.replayedAt && <div class="muted">{utc(d.replayedAt)}</div>}
                    </td>
                    <td>
                      <PostButton
                        action="/console/dead-letters/replay"
                        csrf={csrf}
                        fields={{ id: d.id }}
                        label="Replay"
                      />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </section>

      <section class="card" aria-labelledby="reports-title">
        <h2 id="reports-title">Failed Stripe reports</h2>
        <div class="table-wrap">
          <table>
            <TableHead columns={["Tenant", "Hour", num("Units"), num("Attempts"), "Last error", "Action"]} />
            <tbody>
              {reports.rows.length === 0 && <NoRows columns={6} />}
              {reports.rows.map((r) => (
                <tr data-outbox-id={r.id}>
                  <td>
                    <a href={`/console/tenants/${r.tenant_id}`}>{r.slug}</a>
                  </td>
                  <td>{utc(r.hour)}</td>
                  <td class="num">{count(Number(r.units))}</td>
                  <td class="num">{count(r.attempts)}</td>
                  <td>{r.last_error ?? "–"}</td>
                  <td>
                    <PostButton
                      action="/console/dead-letters/reports/retry"
                      csrf={csrf}
                      fields={{ id: r.id }}
                      label="Retry"
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section class="card" aria-labelledby="syncs-title">
        <h2 id="syncs-title">Failed billing syncs</h2>
        <div class="table-wrap">
          <table>
            <TableHead columns={["Tenant", "Error", "Action"]} />
            <tbody>
              {syncs.length === 0 && <NoRows columns={3} />}
              {syncs.map((t) => (
                <tr data-tenant-id={t.id}>
                  <td>
                    <a href={`/console/tenants/${t.id}`}>{t.slug}</a>
                  </td>
                  <td>{t.error ?? "–"}</td>
                  <td>
                    <PostButton
                      action={`/console/tenants/${t.id}/billing-sync`}
                      csrf={csrf}
                      label="Retry sync"
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section class="card" aria-labelledby="webhooks-title">
        <h2 id="webhooks-title">Webhook deliveries</h2>
        <div class="table-wrap">
          <table>
            <TableHead
              columns={[
                "Died",
                "Tenant",
                "Event",
                "Endpoint",
                num("Attempts"),
                "Last status / error",
                num("Replays"),
                "Action",
              ]}
            />
            <tbody>
              {webhooks.rows.length === 0 && <NoRows columns={8} />}
              {webhooks.rows.map(({ row: w }) => (
                <tr data-webhook-delivery-id={w.delivery.id}>
                  <td>{utc(w.delivery.updatedAt)}</td>
                  <td class="mono">
                    <a href={`/console/tenants/${w.delivery.tenantId}`}>{w.delivery.tenantId}</a>
                  </td>
                  <td class="mono">{w.eventType}</td>
                  <td class="mono">{w.endpointUrl}</td>
                  <td class="num">{count(w.delivery.attempts)}</td>
                  <td>
                    {w.delivery.lastStatus ?? "–"}
                    {w.delivery.lastError && <div class="muted">{w.delivery.lastError}</div>}
                  </td>
                  <td class="num">{count(w.delivery.replays)}</td>
                  <td>
                    <PostButton
                      action="/console/dead-letters/webhooks/replay"
                      csrf={csrf}
                      fields={{ id: w.delivery.id }}
                      label="Replay"
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </>,
  );
}

export function registerConsoleDeadLetters(pages: Hono<AppEnv>): void {
  pages.get("/dead-letters", (c) => deadLettersPage(c));

  pages.post("/dead-letters/replay", async (c) => {
    const id = await formId(c);
    const before = await c.var.db.query.deadLetters.findFirst({ where: eq(deadLetters.id, id) });
    const after = await replayDeadLetter(c.env, c.var.db, id);
    c.set("audit", {
      action: "dead_letter.replay",
      tenantId: null,
      targets: [{ type: "dead_letter", id }],
      changes: diff(before, after, ["replays", "replayedAt"]),
    });
    return c.redirect("/console/dead-letters?notice=replayed", 303);
  });

  pages.post("/dead-letters/webhooks/replay", async (c) => {
    const id = await formId(c);
    let result: Awaited<ReturnType<typeof retryDelivery>>;
    try {
      result = await retryDelivery(c.var.db, c.env, "operator", id);
    } catch (error) {
      // A disabled endpoint refuses the replay: the page says why, with the service's 409.
      if (error instanceof GatewayError && error.code === "conflict")
        return await deadLettersPage(c, { reason: error.message, status: error.status });
      throw error;
    }
    c.set("audit", retryAudit(result));
    return c.redirect("/console/dead-letters?notice=webhook_replayed", 303);
  });

  pages.post("/dead-letters/reports/retry", async (c) => {
    const id = await formId(c);
    await retryFailedReport(c.var.db, id);
    c.set("audit", {
      action: "billing_report.retry",
      tenantId: null,
      targets: [{ type: "billing_outbox", id }],
      changes: { state: { before: "failed", after: "pending" } },
    });
    return c.redirect("/console/dead-letters?notice=retried", 303);
  });
}
