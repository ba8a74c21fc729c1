/**
 * `gw keys list|get|create|update|revoke|rotate`: the admin keys API (`/admin/v1/tenants/:id/keys`,
 * `/admin/v1/keys/:id`). A key is named by its `key_…` id (its plaintext is never sent anywhere but
 * the gateway's proxy); a tenant by its id or slug. `create` and `rotate` print the new plaintext:
 * the only time the gateway ever shows it. `export` and `import` are in `keys-csv.ts`.
 */
import { Command, Option } from "commander";
import { contextOf, tenantId } from "../context";
import type { CreatedKey, Key } from "../key";
import { collect, duration, rateLimit } from "../options";
import { formatRecord, formatTable } from "../output";
import { keysExportCommand, keysImportCommand } from "./keys-csv";

function state(k: Key, now = Date.now()): string {
  if (k.revokedAt) return "revoked";
  if (k.expiresAt && Date.parse(k.expiresAt) <= now) return "expired";
  return k.expiresAt ? "expiring" : "active";
}

/** The row the CLI shows for a key. */
export function keyRow(k: Key): Record<string, unknown> {
  return {
    id: k.id,
    key: `${k.prefix}…${k.last4}`,
    name: k.name,
    env: k.env,
    role: k.role,
    state: state(k),
    expires: k.expiresAt,
    ips: k.ipAllowlist,
    limit: k.rateLimit
      ? `${k.rateLimit.burstCapacity}/${k.rateLimit.refillTokens}/${k.rateLimit.refillPeriodSeconds}s`
      : null,
    created: k.createdAt,
  };
}

interface KeyFlags {
  name?: string;
  env?: "live" | "test";
  role?: "admin" | "member";
  ip?: string[];
  noIps?: boolean;
  expires?: string;
  rateLimit?: Key["rateLimit"];
}

/** A key's attributes from the flags given. `--expires never` clears an expiry. */
function attributes(flags: KeyFlags): Record<string, unknown> {
  return {
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(flags.ip === undefined ? {} : { ipAllowlist: flags.ip }),
    ...(flags.noIps ? { ipAllowlist: [] } : {}),
    ...(flags.expires === undefined ? {} : { expiresAt: flags.expires === "never" ? null : flags.expires }),
    ...(flags.rateLimit === undefined ? {} : { rateLimit: flags.rateLimit }),
  };
}

function attributeFlags(command: Command): Command {
  return command
    .option("--name <name>", "a name for the key")
    .option(
      "--ip <cidr>",
      "allow only these addresses (IPv4/IPv6 address or CIDR; repeat or comma-separate)",
      collect,
    )
    .option("--expires <time>", "expiry (ISO time in the future), or never")
    .option(
      "--rate-limit <b/r/p>",
      "per-key bucket burst/refill/periodSeconds (e.g. 10/5/1), or none",
      rateLimit,
    );
}

const encode = encodeURIComponent;

/** The `keys` command group. */
export function keysCommand(): Command {
  const keys = new Command("keys").description(
    "list, create, update, revoke, rotate, export and import API keys",
  );

  keys
    .command("list")
    .description("list a tenant's keys, newest first (prefix and last 4 only)")
    .argument("<tenant>", "tenant id or slug")
    .action(async (ref: string, _flags, command: Command) => {
      const { out, client } = contextOf(command);
      const id = await tenantId(client, ref);
      const all = await client.all<Key>(`/admin/v1/tenants/${encode(id)}/keys`);
      out.data(all, (ks) => (ks.length === 0 ? "no keys" : formatTable(ks.map((k) => keyRow(k)))));
    });

  keys
    .command("get")
    .description("show one key")
    .argument("<key>", "key id (key_…)")
    .action(async (id: string, _flags, command: Command) => {
      const { out, client } = contextOf(command);
      const key = await client.request<Key>("GET", `/admin/v1/keys/${encode(id)}`);
      out.data(key, (k) => formatRecord(keyRow(k)));
    });

  attributeFlags(keys.command("create").description("issue a key (its plaintext is printed once)"))
    .argument("<tenant>", "tenant id or slug")
    .addOption(
      new Option("--env <env>", "live, or test (routed to the sandbox, never billed)")
        .choices(["live", "test"])
        .default("live"),
    )
    .addOption(
      new Option("--role <role>", "admin keys may manage the tenant's keys")
        .choices(["admin", "member"])
        .default("member"),
    )
    .action(async (ref: string, flags: KeyFlags, command: Command) => {
      const { out, client } = contextOf(command);
      const id = await tenantId(client, ref);
      const created = await client.request<CreatedKey>("POST", `/admin/v1/tenants/${encode(id)}/keys`, {
        body: { env: flags.env, role: flags.role, ...attributes(flags) },
        idempotencyKey: crypto.randomUUID(),
      });
      out.data(created, (k) => `${formatRecord(keyRow(k))}\n\nkey (shown once, store it now):\n${k.key}`);
    });

  attributeFlags(
    keys.command("update").description("change a key (only the flags given); applies on the next request"),
  )
    .argument("<key>", "key id (key_…)")
    .option("--no-ips", "remove the IP allowlist")
    .action(async (id: string, flags: KeyFlags & { ips?: boolean }, command: Command) => {
      const { out, client } = contextOf(command);
      const body = attributes({ ...flags, noIps: flags.ips === false });
      const key = await client.request<Key>("PATCH", `/admin/v1/keys/${encode(id)}`, { body });
      out.data(key, (k) => formatRecord(keyRow(k)));
    });

  keys
    .command("revoke")
    .description("revoke a key: refused on the very next request, everywhere")
    .argument("<key>", "key id (key_…)")
    .action(async (id: string, _flags, command: Command) => {
      const { out, client } = contextOf(command);
      const key = await client.request<Key>("DELETE", `/admin/v1/keys/${encode(id)}`);
      out.data(key, (k) => `revoked ${k.id} (${k.prefix}…${k.last4}) at ${k.revokedAt}`);
    });

  keys
    .command("rotate")
    .description("issue a replacement key; the old one keeps working for the grace period")
    .argument("<key>", "key id (key_…)")
    .option(
      "--grace <duration>",
      "how long the old key still works: seconds, or 90s, 15m, 24h, 7d (default 24h; 0 = stop now)",
      duration,
    )
    .action(async (id: string, flags: { grace?: number }, command: Command) => {
      const { out, client } = contextOf(command);
      const rotated = await client.request<{ key: CreatedKey; previous: Key }>(
        "POST",
        `/admin/v1/keys/${encode(id)}/rotate`,
        {
          body: flags.grace === undefined ? {} : { gracePeriodSeconds: flags.grace },
          idempotencyKey: crypto.randomUUID(),
        },
      );
      out.data(
        rotated,
        (r) =>
          `new key ${r.key.id} (shown once, store it now):\n${r.key.key}\n\nold key ${r.previous.id} works until ${r.previous.expiresAt}`,
      );
    });

  keys.addCommand(keysExportCommand());
  keys.addCommand(keysImportCommand());
  return keys;
}
