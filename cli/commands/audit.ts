/**
 * `gw audit list|export|verify`: the audit trail over the admin API (`/admin/v1/audit…`).
 *
 * - `list`: the newest entries of the action (default) or request log, filtered by tenant, actor,
 *   action and start time.
 * - `export --out file`: the entries streamed to a file (NDJSON by default, or CSV), chain by chain
 *   in seq order, with a running count on stderr.
 * - `verify --file export.ndjson`: offline — recomputes every hash of an NDJSON export with the
 *   gateway's own chain code (workers/audit/chain.ts), so an auditor needs no access to the gateway;
 *   a chain whose export starts at seq 1 must link to the genesis hash. `verify --tenant X`: the
 *   gateway recomputes the chains from its database (`/admin/v1/audit/verify`).
 *
 * A broken chain exits 8 naming the chain and seq.
 */
import { createWriteStream, readFileSync } from "node:fs";
import { Command, Option } from "commander";
import {
  type AuditLog,
  type ChainedEntry,
  GENESIS,
  OPERATOR_CHAIN,
  type VerifyResult,
  verifyEntries,
} from "../../workers/audit/chain";
import type { AuditVerification } from "../../workers/audit/queries";
import type { AdminClient } from "../client";
import { contextOf, type GlobalFlags, tenantId } from "../context";
import { CliError, EXIT, usageError } from "../errors";
import { integer, since, time } from "../options";
import { createOutput, formatTable } from "../output";

/** An entry as the admin API answers it (both logs' fields; each log fills its own). */
interface Entry {
  log: AuditLog;
  chain: string;
  seq: number;
  occurredAt: string;
  actorType?: string;
  actorId?: string;
  action?: string;
  targets?: { type: string; id: string }[];
  keyId?: string;
  method?: string;
  route?: string;
  status?: number;
  clientIp: string | null;
}

const logOption = () =>
  new Option("--log <log>", "action (changes) or request (authenticated requests)").choices([
    "action",
    "request",
  ]);

/** A tenant id from an id, a slug or `_operator` (the operator's own chain). */
const chainOf = async (client: AdminClient, ref: string | undefined) =>
  ref === undefined || ref === OPERATOR_CHAIN ? ref : await tenantId(client, ref);

function listCommand(): Command {
  return new Command("list")
    .description("the newest audit entries, filtered")
    .option("--tenant <tenant>", `tenant id or slug, or ${OPERATOR_CHAIN}`)
    .addOption(logOption().default("action"))
    .option("--actor <id>", "actor id (action log) or key id (request log)")
    .option("--action <verb>", "dotted verb, e.g. key.create (action log)")
    .option("--since <time>", "from this date, ISO time or duration ago (24h, 7d)", since)
    .option("--limit <n>", "entries to show (default 50)", integer, 50)
    .action(
      async (
        flags: {
          tenant?: string;
          log: AuditLog;
          actor?: string;
          action?: string;
          since?: string;
          limit: number;
        },
        command: Command,
      ) => {
        const { out, client } = contextOf(command);
        const tenant = await chainOf(client, flags.tenant);
        const entries: Entry[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.request<{ data: Entry[]; next_cursor: string | null }>(
            "GET",
            "/admin/v1/audit",
            {
              query: {
                log: flags.log,
                tenant,
                actor: flags.actor,
                action: flags.action,
                from: flags.since,
                limit: Math.min(200, flags.limit - entries.length),
                cursor,
              },
            },
          );
          entries.push(...page.data);
          cursor = page.next_cursor ?? undefined;
        } while (cursor && entries.length < flags.limit);
        out.data(entries, (rows) =>
          rows.length === 0
            ? "no entries"
            : formatTable(
                rows.map((e) =>
                  e.log === "action"
                    ? {
                        time: e.occurredAt,
                        tenant: e.chain,
                        seq: e.seq,
                        actor: `${e.actorType}:${e.actorId}`,
                        action: e.action,
                        targets: (e.targets ?? []).map((t) => `${t.type}:${t.id}`),
                        ip: e.clientIp,
                      }
                    : {
                        time: e.occurredAt,
                        tenant: e.chain,
                        seq: e.seq,
                        key: e.keyId,
                        method: e.method,
                        route: e.route,
                        status: e.status,
                        ip: e.clientIp,
                      },
                ),
              ),
        );
      },
    );
}

function exportCommand(): Command {
  return new Command("export")
    .description("stream audit entries to a file (NDJSON verifies with 'gw audit verify --file')")
    .requiredOption("--out <file>", "the file to write")
    .addOption(new Option("--format <format>", "file format").choices(["ndjson", "csv"]).default("ndjson"))
    .option("--tenant <tenant>", `tenant id or slug, or ${OPERATOR_CHAIN} (default: every chain)`)
    .addOption(logOption().default("action"))
    .option("--since <time>", "from this date, ISO time or duration ago (24h, 7d)", since)
    .option("--to <time>", "up to this date or ISO time, exclusive", time)
    .action(
      async (
        flags: {
          out: string;
          format: "ndjson" | "csv";
          tenant?: string;
          log: AuditLog;
          since?: string;
          to?: string;
        },
        command: Command,
      ) => {
        const { out, client } = contextOf(command);
        const tenant = await chainOf(client, flags.tenant);
        const res = await client.download("/admin/v1/audit/export", {
          format: flags.format,
          log: flags.log,
          tenant,
          from: flags.since,
          to: flags.to,
        });
        const file = createWriteStream(flags.out, { mode: 0o600 });
        const opened = new Promise<void>((resolve, reject) => {
          file.once("open", () => resolve());
          file.once("error", (error: NodeJS.ErrnoException) =>
            reject(usageError(`cannot write ${flags.out}: ${error.code ?? String(error)}`)),
          );
        });
        await opened;
        const tty = Boolean(process.stderr.isTTY);
        let lines = 0;
        let shown = 0;
        const progress = (final: boolean) => {
          if (tty)
            process.stderr.write(`\rexporting audit ${flags.log} entries: ${lines}${final ? "\n" : ""}`);
          else if (final || lines - shown >= 10_000) {
            process.stderr.write(`exporting audit ${flags.log} entries: ${lines}\n`);
            shown = lines;
          }
        };
        try {
          for await (const chunk of res.body ?? []) {
            const bytes = chunk as Uint8Array;
            for (const b of bytes) if (b === 10) lines++;
            if (!file.write(bytes)) await new Promise<void>((resolve) => file.once("drain", () => resolve()));
            progress(false);
          }
        } catch (error) {
          throw new CliError(EXIT.unavailable, {
            title: "Export interrupted",
            detail: `the gateway stopped sending after ${lines} lines (${String(error)}); ${flags.out} is incomplete`,
            code: "unreachable",
          });
        } finally {
          progress(true);
          await new Promise<void>((resolve) => file.end(() => resolve()));
        }
        const entries = flags.format === "csv" ? Math.max(0, lines - 1) : lines;
        out.data(
          { file: flags.out, format: flags.format, log: flags.log, entries },
          (r) => `exported ${r.entries} ${r.log} entries to ${r.file}`,
        );
      },
    );
}

/** Verifies an NDJSON export offline: every line's hash recomputed, chains unbroken, seq 1 on GENESIS. */
export async function verifyFile(
  path: string,
): Promise<{ log: AuditLog; entries: number; result: VerifyResult }[]> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw usageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (text.startsWith("log,chain,"))
    throw usageError(`${path} is a CSV export: verify reads NDJSON (--format ndjson)`);
  const byLog = new Map<AuditLog, ChainedEntry[]>();
  for (const [index, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    let entry: ChainedEntry & { log?: unknown };
    try {
      entry = JSON.parse(line) as ChainedEntry & { log?: unknown };
    } catch {
      throw usageError(`${path} line ${index + 1} is not JSON: not an audit export`);
    }
    if ((entry.log !== "action" && entry.log !== "request") || typeof entry.chain !== "string")
      throw usageError(`${path} line ${index + 1} is not an audit entry (no log or chain)`);
    byLog.set(entry.log, [...(byLog.get(entry.log) ?? []), entry]);
  }
  const results: { log: AuditLog; entries: number; result: VerifyResult }[] = [];
  for (const [log, entries] of byLog) {
    // A chain exported from its start must link to the genesis hash; a later start is taken as is.
    const anchors: Record<string, string> = {};
    const seen = new Set<string>();
    for (const e of entries) {
      if (!seen.has(e.chain) && e.seq === 1) anchors[e.chain] = GENESIS;
      seen.add(e.chain);
    }
    results.push({ log, entries: entries.length, result: await verifyEntries(log, entries, anchors) });
  }
  return results;
}

function broken(log: AuditLog, at: { chain: string; seq: number }, reason: string | undefined): CliError {
  return new CliError(EXIT.brokenChain, {
    title: "Audit chain broken",
    detail: `${log} log, chain ${at.chain}, seq ${at.seq}: ${reason ?? "does not verify"}`,
    code: "audit_chain_broken",
  });
}

function verifyCommand(): Command {
  return new Command("verify")
    .description(
      "prove audit entries unedited: an NDJSON export offline (--file), or a tenant's chains on the gateway",
    )
    .option("--file <export.ndjson>", "verify this export offline (no gateway needed)")
    .option("--tenant <tenant>", `verify on the gateway: tenant id or slug, or ${OPERATOR_CHAIN}`)
    .addOption(logOption())
    .option("--since <time>", "on the gateway: from this date, ISO time or duration ago", since)
    .option("--to <time>", "on the gateway: up to this date or ISO time, exclusive", time)
    .action(
      async (
        flags: { file?: string; tenant?: string; log?: AuditLog; since?: string; to?: string },
        command: Command,
      ) => {
        if ((flags.file === undefined) === (flags.tenant === undefined))
          throw usageError("give either --file (an NDJSON export) or --tenant (verify on the gateway)");
        if (flags.file !== undefined) {
          const out = createOutput(Boolean(command.optsWithGlobals<GlobalFlags>().json));
          const results = await verifyFile(flags.file);
          if (results.length === 0) throw usageError(`${flags.file} holds no audit entries`);
          for (const { log, result } of results)
            if (!result.ok) throw broken(log, result.brokenAt, result.reason);
          out.data(
            results.map(({ log, entries }) => ({ log, entries, ok: true })),
            (rows) => rows.map((r) => `ok: ${r.entries} ${r.log} entries verify`).join("\n"),
          );
          return;
        }
        const { out, client } = contextOf(command);
        const tenant = await chainOf(client, flags.tenant);
        const answers: AuditVerification[] = [];
        for (const log of flags.log ? [flags.log] : (["action", "request"] as const)) {
          const answer = await client.request<AuditVerification>("GET", "/admin/v1/audit/verify", {
            query: { tenant, log, from: flags.since, to: flags.to },
          });
          if (!answer.ok && answer.brokenAt) throw broken(log, answer.brokenAt, answer.reason);
          answers.push(answer);
        }
        out.data(answers, (rows) =>
          rows.map((r) => `ok: ${r.entries} ${r.log} entries in ${r.chains} chain(s) verify`).join("\n"),
        );
      },
    );
}

/** The `audit` command. */
export function auditCommand(): Command {
  return new Command("audit")
    .description("the audit trail: list, export, verify (exit 8: a broken chain)")
    .addCommand(listCommand())
    .addCommand(exportCommand())
    .addCommand(verifyCommand());
}
