/**
 * `/portal/keys`: the tenant's API keys, newest first (prefix and last 4 only), and the forms that
 * change them:
 * - `POST /portal/keys`: create a live or test key; the answer shows the plaintext once;
 * - `POST /portal/keys/:id/revoke`: revoke (effective on the very next request, everywhere);
 * - `POST /portal/keys/:id/rotate`: a new key (shown once), the old one working for a grace period;
 * - `POST /portal/keys/:id/allowlist`: replace the key's IP allowlist (CIDR blocks, v4 and v6).
 *
 * Every change goes through the same services as the tenant and admin APIs
 * (workers/api/key-lifecycle.ts), so Postgres, KV and the tenant object change exactly as they do
 * there, and every form is validated by the APIs' own schemas (KeyInput, KeyPatch, RotateInput).
 * A key id from a form is first read as the session's tenant (row-level security): another tenant's
 * key is "not found" before anything changes. Creating, rotating and editing follow the tenant
 * API door's status rules (tenant-gate.ts); revoking is always allowed, to shut a leaked key down.
 */

import type { z } from "@hono/zod-openapi";
import { and, eq, inArray } from "drizzle-orm";
import type { Context, Hono } from "hono";
import { type ApiKey, apiKeys, type Tenant } from "../../../schema";
import { createKey, revokeKey, rotateKey, updateKey } from "../../api/key-lifecycle";
import { keyset, PageQuery } from "../../api/pagination";
import { KeyInput, KeyPatch, RotateInput } from "../../api/schemas";
import { keyCreated, keyRevoked, keyRotated, keyUpdated } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { withTenant } from "../../shared/db";
import { formatUtc } from "../format";
import { CsrfField, Notice, PostButton } from "../layout";
import { portalTenant, portalTenantId } from "./context";
import { portalPage } from "./portal-page";
import { changeRefusal } from "./tenant-gate";

/** The grace periods offered when rotating (seconds → label); RotateInput bounds what is accepted. */
const GRACE_CHOICES: [number, string][] = [
  [0, "none (stops at once)"],
  [3_600, "1 hour"],
  [86_400, "24 hours"],
  [7 * 86_400, "7 days"],
  [30 * 86_400, "30 days"],
];

/** Outcomes of a redirected change, named in the query: fixed texts, never echoed input. */
const DONE: Record<string, string> = {
  revoked: "The key is revoked. Requests with it are refused from now on.",
  allowlist: "The IP allowlist is saved. It applies from the next request.",
};

/** Ids are `key_` and base32; anything else cannot name a key (and never reaches Postgres). */
const KEY_ID = /^key_[0-9A-Za-z]{1,60}$/;

type Form = Record<string, string | File>;

const field = (form: Form, name: string): string => {
  const value = form[name];
  return typeof value === "string" ? value : "";
};

/** An allowlist as typed: addresses and blocks separated by commas, spaces or new lines. */
const splitList = (text: string): string[] => text.split(/[\s,]+/).filter((entry) => entry !== "");

/** The create form's values, kept to fill the form again after a refusal. */
interface CreateValues {
  name: string;
  env: string;
  role: string;
  expiresOn: string;
  ipAllowlist: string;
}

const EMPTY_CREATE: CreateValues = { name: "", env: "live", role: "member", expiresOn: "", ipAllowlist: "" };

/** A key's plaintext, shown once, with what it replaced when it comes from a rotation. */
interface Shown {
  plaintext: string;
  rotated?: { graceEnds: Date | null };
}

interface PageState {
  notice?: { kind: "ok" | "error"; text: string };
  status?: number;
  shown?: Shown;
  create?: CreateValues;
  /** An allowlist edit that was refused: the key and the text to show in its form again. */
  allowlistDraft?: { keyId: string; text: string };
}

/** Field names of the forms, for a person reading a validation message. */
const LABELS: Record<string, string> = {
  name: "Name",
  env: "Environment",
  role: "Role",
  expiresAt: "Expires on",
  ipAllowlist: "IP allowlist",
  gracePeriodSeconds: "Grace period",
};

/** A schema's refusal as one sentence per problem, naming the field (and the entry, for a list). */
function problems(error: z.ZodError, values: Record<string, unknown>): string {
  return error.issues
    .map((issue) => {
      const [head, index] = issue.path;
      const label = LABELS[String(head)] ?? String(head);
      const list = values[String(head)];
      if (typeof index === "number" && Array.isArray(list))
        return `${label}: "${list[index]}" ${issue.message}.`;
      return `${label}: ${issue.message}.`;
    })
    .join(" ");
}

type KeyStatus = { label: string; badge: string };

function statusOf(key: ApiKey, rotated: boolean, now: number): KeyStatus {
  if (key.revokedAt) return { label: "revoked", badge: "badge-revoked" };
  if (key.expiresAt && key.expiresAt.getTime() <= now) return { label: "expired", badge: "badge-bad" };
  if (rotated && key.expiresAt)
    return { label: `rotating until ${formatUtc(key.expiresAt)}`, badge: "badge-warn" };
  return { label: "active", badge: "badge-active" };
}

/** One page of the tenant's keys, newest first, and which of them were rotated (have a successor). */
async function listKeys(c: Context<AppEnv>, cursor: string | undefined) {
  const query = PageQuery.safeParse({ cursor });
  if (!query.success)
    throw new GatewayError("validation_failed", "The cursor is not one this list returned.");
  const tenantId = portalTenantId(c);
  const page = keyset("keys", apiKeys, query.data, "desc");
  const { rows, rotated } = await withTenant(c.var.db, tenantId, async (tx) => {
    const rows = await tx
      .select({ row: apiKeys, position: page.position })
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, tenantId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.take);
    const ids = rows.map((r) => r.row.id);
    const successors =
      ids.length === 0
        ? []
        : await tx
            .select({ from: apiKeys.rotatedFromId })
            .from(apiKeys)
            .where(and(eq(apiKeys.tenantId, tenantId), inArray(apiKeys.rotatedFromId, ids)));
    return { rows, rotated: new Set(successors.map((s) => s.from)) };
  });
  return {
    ...page.page(
      rows,
      (k) => k,
      (k) => k.id,
    ),
    rotated,
  };
}

/** The key `keyId` if it is the session's tenant's (read as that tenant); otherwise 404. */
async function ownKey(c: Context<AppEnv>, keyId: string): Promise<ApiKey> {
  const tenantId = portalTenantId(c);
  if (!KEY_ID.test(keyId)) throw new GatewayError("not_found", "No such key.");
  const [row] = await withTenant(c.var.db, tenantId, (tx) =>
    tx
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId))),
  );
  if (!row) throw new GatewayError("not_found", "No such key.");
  return row;
}

function NewKey(props: { shown: Shown }) {
  const { rotated } = props.shown;
  return (
    <section class="card" aria-labelledby="new-key-title">
      <h2 id="new-key-title">Your new key</h2>
      <p class="notice notice-error" role="alert">
        Copy it now: it won't be shown again. Only its hash is stored.
      </p>
      <div class="secret">
        <code id="new-key">{props.shown.plaintext}</code>
        <button type="button" data-copy="new-key">
          Copy
        </button>
      </div>
      {rotated && (
        <p class="muted">
          {rotated.graceEnds && rotated.graceEnds.getTime() > Date.now()
            ? `The old key keeps working until ${formatUtc(rotated.graceEnds)}.`
            : "The old key has stopped working."}
        </p>
      )}
    </section>
  );
}

function CreateForm(props: { csrf: string; values: CreateValues }) {
  const v = props.values;
  return (
    <form method="post" action="/portal/keys" id="create-key" class="card narrow">
      <h2>Create a key</h2>
      <CsrfField csrf={props.csrf} />
      <label for="key-name">Name</label>
      <input id="key-name" name="name" maxlength={200} value={v.name} placeholder="e.g. production server" />
      <label for="key-env">Environment</label>
      <select id="key-env" name="env">
        <option value="live" selected={v.env === "live"}>
          live
        </option>
        <option value="test" selected={v.env === "test"}>
          test (sandbox, never billed)
        </option>
      </select>
      <label for="key-role">Role</label>
      <select id="key-role" name="role">
        <option value="member" selected={v.role === "member"}>
          member (calls the API, reads usage)
        </option>
        <option value="admin" selected={v.role === "admin"}>
          admin (also manages keys)
        </option>
      </select>
      <label for="key-expires">Expires on (optional, 00:00 UTC of that day)</label>
      <input id="key-expires" name="expiresOn" type="date" value={v.expiresOn} />
      <label for="key-ips">IP allowlist (optional)</label>
      <textarea id="key-ips" name="ipAllowlist" rows={3} placeholder={"203.0.113.0/24\n2001:db8::/32"}>
        {v.ipAllowlist}
      </textarea>
      <p class="muted">Addresses or CIDR blocks, one per line. Empty allows any address.</p>
      <button type="submit" class="primary">
        Create key
      </button>
    </form>
  );
}

function KeyActions(props: { keyRow: ApiKey; csrf: string; draft: string | undefined; mayChange: boolean }) {
  const k = props.keyRow;
  const label = k.name ? `"${k.name}" (${k.prefix}…${k.last4})` : `${k.prefix}…${k.last4}`;
  return (
    <>
      <PostButton
        action={`/portal/keys/${k.id}/revoke`}
        csrf={props.csrf}
        label="Revoke"
        confirm={`Revoke ${label}? Requests with it are refused at once.`}
        danger
      />
      {props.mayChange && (
        <>
          <form method="post" action={`/portal/keys/${k.id}/rotate`}>
            <CsrfField csrf={props.csrf} />
            <label for={`grace-${k.id}`}>Old key keeps working for</label>
            <select id={`grace-${k.id}`} name="gracePeriodSeconds">
              {GRACE_CHOICES.map(([seconds, text]) => (
                <option value={String(seconds)} selected={seconds === 86_400}>
                  {text}
                </option>
              ))}
            </select>
            <button type="submit">Rotate</button>
          </form>
          <details open={props.draft !== undefined}>
            <summary>Edit IP allowlist</summary>
            <form method="post" action={`/portal/keys/${k.id}/allowlist`}>
              <CsrfField csrf={props.csrf} />
              <label for={`ips-${k.id}`}>Addresses or CIDR blocks, one per line (empty: any)</label>
              <textarea id={`ips-${k.id}`} name="ipAllowlist" rows={3}>
                {props.draft ?? k.ipAllowlist.join("\n")}
              </textarea>
              <button type="submit">Save allowlist</button>
            </form>
          </details>
        </>
      )}
    </>
  );
}

/** The keys page: its notice, the key just made (once), the create form and the list. */
async function keysPage(c: Context<AppEnv>, state: PageState = {}) {
  const { tenant } = await portalTenant(c);
  const now = Date.now();
  const refusal = changeRefusal(tenant, now);
  const list = await listKeys(c, c.req.method === "GET" ? c.req.query("cursor") : undefined);
  const csrf = c.var.web?.csrf ?? "";
  return portalPage(
    c,
    { title: "Keys", current: "/portal/keys", who: tenant.name, status: state.status },
    <>
      {state.notice && <Notice kind={state.notice.kind}>{state.notice.text}</Notice>}
      {state.shown && <NewKey shown={state.shown} />}
      {refusal ? (
        <Notice kind="error">{`Keys cannot be created, rotated or edited now: ${refusal.message} You can still revoke keys.`}</Notice>
      ) : (
        <CreateForm csrf={csrf} values={state.create ?? EMPTY_CREATE} />
      )}
      <h2>Your keys</h2>
      {list.data.length === 0 ? (
        <p class="muted">No keys yet.</p>
      ) : (
        <div class="table-wrap">
          <table id="keys">
            <thead>
              <tr>
                <th>Name</th>
                <th>Env</th>
                <th>Role</th>
                <th>Key</th>
                <th>Created</th>
                <th>Expires</th>
                <th>Status</th>
                <th>IP allowlist</th>
                <th>Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((k) => (
                <KeyRow
                  keyRow={k}
                  status={statusOf(k, list.rotated.has(k.id), now)}
                  csrf={csrf}
                  mayChange={refusal === null}
                  draft={state.allowlistDraft?.keyId === k.id ? state.allowlistDraft.text : undefined}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.next_cursor && (
        <p>
          <a href={`/portal/keys?cursor=${encodeURIComponent(list.next_cursor)}`}>Older keys</a>
        </p>
      )}
      <p class="muted">Last-used times are not recorded per key; see Usage for traffic by route.</p>
    </>,
  );
}

function KeyRow(props: {
  keyRow: ApiKey;
  status: KeyStatus;
  csrf: string;
  mayChange: boolean;
  draft: string | undefined;
}) {
  const k = props.keyRow;
  const live = props.status.badge === "badge-active" || props.status.badge === "badge-warn";
  return (
    <tr data-key-id={k.id}>
      <td>{k.name ?? <span class="muted">unnamed</span>}</td>
      <td>
        <span class={k.env === "live" ? "badge badge-ok" : "badge"}>{k.env}</span>
      </td>
      <td>{k.role}</td>
      <td>
        <code>{`${k.prefix}…${k.last4}`}</code>
      </td>
      <td>{formatUtc(k.createdAt)}</td>
      <td>{k.expiresAt ? formatUtc(k.expiresAt) : <span class="muted">never</span>}</td>
      <td>
        <span class={`badge ${props.status.badge}`}>{props.status.label}</span>
      </td>
      <td>
        {k.ipAllowlist.length === 0 ? (
          <span class="muted">any address</span>
        ) : (
          k.ipAllowlist.map((entry) => (
            <>
              <code>{entry}</code>{" "}
            </>
          ))
        )}
      </td>
      <td>
        {live && <KeyActions keyRow={k} csrf={props.csrf} draft={props.draft} mayChange={props.mayChange} />}
      </td>
    </tr>
  );
}

/** Refuses a change the tenant's status does not allow: the page with the reason, and its status. */
function refused(tenant: Tenant) {
  const refusal = changeRefusal(tenant, Date.now());
  return refusal && { notice: { kind: "error" as const, text: refusal.message }, status: refusal.status };
}

/** Registers the keys page and its forms (behind the portal's session door and CSRF check). */
export function registerPortalKeys(portal: Hono<AppEnv>): void {
  portal.get("/keys", (c) => {
    const done = c.req.query("done");
    return keysPage(c, done && DONE[done] ? { notice: { kind: "ok", text: DONE[done] } } : {});
  });

  portal.post("/keys", async (c) => {
    const form = await c.req.parseBody();
    const values: CreateValues = {
      name: field(form, "name"),
      env: field(form, "env"),
      role: field(form, "role") || "member",
      expiresOn: field(form, "expiresOn"),
      ipAllowlist: field(form, "ipAllowlist"),
    };
    const { tenant } = await portalTenant(c);
    const refusal = refused(tenant);
    if (refusal) return keysPage(c, { ...refusal, create: values });
    const expiresOn = values.expiresOn.trim();
    const input = {
      name: values.name.trim() === "" ? null : values.name,
      env: values.env,
      role: values.role,
      ipAllowlist: splitList(values.ipAllowlist),
      // A day from the date picker is its first instant in UTC; anything else KeyInput refuses.
      expiresAt:
        expiresOn === ""
          ? null
          : /^\d{4}-\d{2}-\d{2}$/.test(expiresOn)
            ? `${expiresOn}T00:00:00Z`
            : expiresOn,
    };
    const parsed = KeyInput.safeParse(input);
    if (!parsed.success) {
      return keysPage(c, {
        notice: { kind: "error", text: problems(parsed.error, input) },
        status: 400,
        create: values,
      });
    }
    const created = await createKey(c.var.db, c.env, tenant.id, parsed.data);
    c.set("audit", keyCreated(created.row));
    return keysPage(c, { shown: { plaintext: created.plaintext }, status: 201 });
  });

  portal.post("/keys/:id/revoke", async (c) => {
    const key = await ownKey(c, c.req.param("id"));
    const revoked = await revokeKey(c.var.db, c.env, key.id);
    if (revoked) c.set("audit", keyRevoked(key, revoked));
    return c.redirect("/portal/keys?done=revoked", 303);
  });

  portal.post("/keys/:id/rotate", async (c) => {
    const key = await ownKey(c, c.req.param("id"));
    const { tenant } = await portalTenant(c);
    const refusal = refused(tenant);
    if (refusal) return keysPage(c, refusal);
    const grace = field(await c.req.parseBody(), "gracePeriodSeconds");
    const input = { gracePeriodSeconds: grace === "" ? undefined : Number(grace) };
    const parsed = RotateInput.safeParse(input);
    if (!parsed.success) {
      return keysPage(c, { notice: { kind: "error", text: problems(parsed.error, input) }, status: 400 });
    }
    const result = await rotateKey(c.var.db, c.env, key.id, parsed.data.gracePeriodSeconds);
    if (!result) {
      return keysPage(c, {
        notice: { kind: "error", text: "The key is revoked or expired; create a new one instead." },
        status: 409,
      });
    }
    c.set("audit", keyRotated(key, result.previous, result.created.row));
    return keysPage(c, {
      shown: { plaintext: result.created.plaintext, rotated: { graceEnds: result.previous.expiresAt } },
      status: 201,
    });
  });

  portal.post("/keys/:id/allowlist", async (c) => {
    const key = await ownKey(c, c.req.param("id"));
    const { tenant } = await portalTenant(c);
    const refusal = refused(tenant);
    if (refusal) return keysPage(c, refusal);
    const text = field(await c.req.parseBody(), "ipAllowlist");
    const input = { ipAllowlist: splitList(text) };
    const parsed = KeyPatch.safeParse(input);
    if (!parsed.success) {
      return keysPage(c, {
        notice: { kind: "error", text: problems(parsed.error, input) },
        status: 400,
        allowlistDraft: { keyId: key.id, text },
      });
    }
    const updated = await updateKey(c.var.db, c.env, key.id, parsed.data);
    if (!updated) {
      return keysPage(c, {
        notice: { kind: "error", text: "The key is revoked; its allowlist can no longer change." },
        status: 409,
      });
    }
    c.set("audit", keyUpdated(key, updated));
    return c.redirect("/portal/keys?done=allowlist", 303);
  });
}
