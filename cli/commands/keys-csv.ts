/**
 * `gw keys export <tenant> --csv file` and `gw keys import <tenant> --csv file --out file`: a tenant's
 * keys to and from CSV, with progress on stderr.
 *
 * Import creates one key per row (`name,env,role,ipAllowlist,expiresAt,rateLimit`; other columns,
 * such as an export's `id` or `prefix`, are ignored; rows of revoked or expired keys are skipped). The new
 * plaintexts go to the `--out` CSV only (mode 0600, appended row by row, so a crash keeps what was
 * made), never to the terminal. Each row is sent with an Idempotency-Key derived from the tenant, the
 * row's key attributes and how many identical rows came before it (not the row number or the file, so
 * fixing or removing one row changes no other): importing the same rows again within 24 h (after a
 * crash, or with failed rows fixed) replays the keys already made, same id and plaintext, and never
 * makes them twice.
 */
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command } from "commander";
import { contextOf, tenantId } from "../context";
import { formatCsv, formatCsvRow, parseCsvRecords } from "../csv";
import { CliError, EXIT, type ExitCode, type Problem, usageError } from "../errors";
import type { CreatedKey, Key } from "../key";
import { errorLine } from "../output";

/** The columns of an export; an import reads the first six and ignores the rest. */
const EXPORT_COLUMNS = [
  "name",
  "env",
  "role",
  "ipAllowlist",
  "expiresAt",
  "rateLimit",
  "id",
  "prefix",
  "last4",
  "revokedAt",
  "createdAt",
];
const OUT_COLUMNS = ["row", "id", "name", "env", "role", "key"];

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw usageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/**
 * Writes a file only its owner can read. With `fresh`, an existing file is an error, not overwritten:
 * it may hold the plaintexts of an earlier import, shown nowhere else.
 */
function writePrivate(path: string, text: string, fresh = false): void {
  try {
    writeFileSync(path, text, { mode: 0o600, flag: fresh ? "wx" : "w" });
    chmodSync(path, 0o600); // an existing file keeps its old mode through writeFileSync
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST")
      throw usageError(`${path} exists (it may hold earlier keys): choose another --out`);
    throw usageError(`cannot write ${path}: ${code ?? String(error)}`);
  }
}

/** The export command. */
export function keysExportCommand(): Command {
  return new Command("export")
    .description("write a tenant's keys (no plaintexts: prefix and last 4) to a CSV file")
    .argument("<tenant>", "tenant id or slug")
    .requiredOption("--csv <file>", "the CSV file to write")
    .action(async (ref: string, flags: { csv: string }, command: Command) => {
      const { out, client } = contextOf(command);
      const id = await tenantId(client, ref);
      const keys = await client.all<Key>(`/admin/v1/tenants/${encodeURIComponent(id)}/keys`, {}, (count) =>
        out.note(`exporting keys: ${count}`),
      );
      const rows = keys.map((k) => [
        k.name ?? "",
        k.env,
        k.role,
        k.ipAllowlist.join(" "),
        k.expiresAt ?? "",
        k.rateLimit
          ? `${k.rateLimit.burstCapacity}/${k.rateLimit.refillTokens}/${k.rateLimit.refillPeriodSeconds}`
          : "",
        k.id,
        k.prefix,
        k.last4,
        k.revokedAt ?? "",
        k.createdAt,
      ]);
      writePrivate(flags.csv, formatCsv(EXPORT_COLUMNS, rows));
      out.data(
        { tenantId: id, file: flags.csv, keys: keys.length },
        (r) => `exported ${r.keys} keys to ${r.file}`,
      );
    });
}

/** One CSV row as the body of a key create, or why it cannot be one. */
function keyBody(record: Record<string, string>): Record<string, unknown> | string {
  const env = record.env?.trim() || "live";
  const role = record.role?.trim() || "member";
  if (env !== "live" && env !== "test") return `env must be live or test, not '${env}'`;
  if (role !== "admin" && role !== "member") return `role must be admin or member, not '${role}'`;
  const body: Record<string, unknown> = { env, role, name: record.name?.trim() || null };
  const ips = (record.ipallowlist ?? "").split(/[\s;]+/).filter((v) => v !== "");
  if (ips.length > 0) body.ipAllowlist = ips;
  if (record.expiresat?.trim()) body.expiresAt = record.expiresat.trim();
  const limit = record.ratelimit?.trim();
  if (limit) {
    const parts = limit.split("/").map(Number);
    if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n)))
      return `rateLimit must be burst/refill/periodSeconds, not '${limit}'`;
    body.rateLimit = { burstCapacity: parts[0], refillTokens: parts[1], refillPeriodSeconds: parts[2] };
  }
  return body;
}

interface Failure {
  row: number;
  exitCode: ExitCode;
  problem: Problem;
}

/** The import command. */
export function keysImportCommand(): Command {
  return new Command("import")
    .description(
      "create keys from a CSV file (name,env,role,ipAllowlist,expiresAt,rateLimit); plaintexts go to --out only",
    )
    .argument("<tenant>", "tenant id or slug")
    .requiredOption("--csv <file>", "the CSV file to read (an export works as is)")
    .requiredOption(
      "--out <file>",
      "a new file for the new keys' plaintexts (CSV, mode 0600; never overwritten)",
    )
    .action(async (ref: string, flags: { csv: string; out: string }, command: Command) => {
      if (resolve(flags.csv) === resolve(flags.out)) throw usageError("--out must not be the --csv file");
      const text = readText(flags.csv);
      const { header, records } = parseCsvRecords(text);
      if (!header.includes("name") && !header.includes("env"))
        throw usageError(`${flags.csv} has no header row (it needs a name or an env column)`);
      const { out, client } = contextOf(command);
      const id = await tenantId(client, ref);
      const seen = new Map<string, number>();

      writePrivate(flags.out, formatCsv(OUT_COLUMNS, []), true);
      const created: Array<Omit<Key, "tenantId"> & { row: number }> = [];
      const skipped: { row: number; reason: string }[] = [];
      const failed: Failure[] = [];
      const progress = out.progress("importing keys", records.length);
      try {
        for (const [index, record] of records.entries()) {
          const row = index + 2; // as a spreadsheet numbers it: the header is row 1 (blank lines are not rows)
          const body = keyBody(record);
          const expiresAt = Date.parse(record.expiresat ?? "");
          if (record.revokedat?.trim()) skipped.push({ row, reason: "revoked key" });
          else if (expiresAt <= Date.now()) skipped.push({ row, reason: "expired key" });
          else if (typeof body === "string")
            failed.push({
              row,
              exitCode: EXIT.usage,
              problem: { title: "Bad row", detail: body, code: "usage" },
            });
          else {
            try {
              const attributes = JSON.stringify(body);
              const nth = (seen.get(attributes) ?? 0) + 1;
              seen.set(attributes, nth);
              const digest = createHash("sha256").update(`${id}\n${attributes}\n${nth}`).digest("hex");
              const key = await client.request<CreatedKey>(
                "POST",
                `/admin/v1/tenants/${encodeURIComponent(id)}/keys`,
                {
                  body,
                  idempotencyKey: `gw-import-${digest}`,
                },
              );
              appendFileSync(
                flags.out,
                formatCsvRow([String(row), key.id, key.name ?? "", key.env, key.role, key.key]),
              );
              const { key: _plaintext, tenantId: _tenant, ...shown } = key;
              created.push({ row, ...shown });
            } catch (error) {
              // Only the gateway's refusals are per row; anything else (auth, unreachable) stops the import.
              if (
                !(error instanceof CliError) ||
                (error.exitCode !== EXIT.refused && error.exitCode !== EXIT.notFound)
              )
                throw error;
              failed.push({ row, exitCode: error.exitCode, problem: error.problem });
            }
          }
          progress.tick();
        }
      } finally {
        // Ends the bar's line, also before an error that stopped the import is printed.
        progress.done();
      }

      out.data(
        {
          tenantId: id,
          out: flags.out,
          created,
          skipped,
          failed: failed.map(({ row, problem }) => ({ row, problem })),
        },
        (r) =>
          [
            ...r.skipped.map((s) => `row ${s.row}: skipped (${s.reason})`),
            `created ${r.created.length} keys (plaintexts in ${r.out}), ${r.skipped.length} skipped, ${failed.length} failed`,
          ].join("\n"),
      );
      if (!out.json)
        for (const f of failed)
          out.note(errorLine({ ...f.problem, title: `row ${f.row}: ${f.problem.title}` }));
      const first = failed[0];
      if (first)
        throw new CliError(first.exitCode, {
          title: "Import incomplete",
          detail: `${failed.length} of ${records.length} rows failed (first: row ${first.row}: ${first.problem.detail}); fix them and import the same file again: the keys already made are returned, not made twice`,
          code: "import_incomplete",
        });
    });
}
