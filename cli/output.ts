/**
 * What the CLI prints. Data goes to stdout (a table for people, or JSON alone with `--json`, so a
 * pipe into `jq` never meets anything else); errors and progress go to stderr. Every string from
 * the gateway is stripped of control characters before it reaches a terminal: key and tenant names
 * are tenant-supplied, and an escape sequence in one must not repaint the operator's screen.
 */
import type { Problem } from "./errors";

const BARS = "▁▂▃▄▅▆▇█";
// C0 and C1 controls and DEL: what a terminal interprets.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** A cell value as printed: no control characters, `-` for null. */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === "") return "-";
  const text = typeof value === "string" ? value : Array.isArray(value) ? value.join(" ") : String(value);
  return text.replace(CONTROL, "�");
}

/** One line per row, columns padded to their widest cell; numbers right-aligned. */
export function formatTable(rows: Record<string, unknown>[], columns?: string[]): string {
  const names = columns ?? Object.keys(rows[0] ?? {});
  const cells = rows.map((row) => names.map((name) => cell(row[name])));
  const widths = names.map((name, i) => Math.max(name.length, ...cells.map((r) => (r[i] as string).length)));
  const numeric = names.map((name) => rows.length > 0 && rows.every((row) => typeof row[name] === "number"));
  const line = (values: string[]) =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join("  ")
      .trimEnd();
  return [line(names.map((n) => n.toUpperCase())), ...cells.map(line)].join("\n");
}

/** `name  value` lines for one object. */
export function formatRecord(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record)
    .map(
      ([k, v]) =>
        `${k.padEnd(width)}  ${typeof v === "object" && v !== null && !Array.isArray(v) ? JSON.stringify(v) : cell(v)}`,
    )
    .join("\n");
}

/** One bar per value, scaled from 0 to the largest (all zeros draw the lowest bar). */
export function sparkline(values: number[]): string {
  const max = Math.max(0, ...values);
  return values
    .map((v) =>
      max === 0 ? BARS[0] : BARS[Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1)))],
    )
    .join("");
}

/** Where a command prints, and how. */
export interface Output {
  json: boolean;
  /** Data: JSON alone with `--json`; otherwise `human()` of it. */
  data<T>(value: T, human: (value: T) => string): void;
  /** A note on stderr (never data): warnings, and where a file went. */
  note(line: string): void;
  /** Counts a long operation on stderr: a redrawn bar on a terminal, a line per tenth otherwise. */
  progress(label: string, total: number): Progress;
}

/** A running count of a long operation. */
export interface Progress {
  tick(): void;
  done(): void;
}

/** The output of one run. */
export function createOutput(json: boolean, stdout = process.stdout, stderr = process.stderr): Output {
  return {
    json,
    data(value, human) {
      stdout.write(`${json ? JSON.stringify(value, null, 2) : human(value)}\n`);
    },
    note(line) {
      stderr.write(`${line}\n`);
    },
    progress(label, total) {
      let count = 0;
      const tty = Boolean(stderr.isTTY);
      const step = Math.max(1, Math.ceil(total / 10));
      const draw = () => {
        const width = 30;
        const filled = total === 0 ? width : Math.round((count / total) * width);
        stderr.write(`\r${label} [${"█".repeat(filled)}${"░".repeat(width - filled)}] ${count}/${total}`);
      };
      if (tty) draw();
      return {
        tick() {
          count++;
          if (tty) draw();
          else if (count % step === 0 || count === total) stderr.write(`${label}: ${count}/${total}\n`);
        },
        done() {
          if (tty) stderr.write("\n");
        },
      };
    },
  };
}

/** The one line an error prints: `gw: <title>: <detail> (request req_…)`, control characters removed. */
export function errorLine(problem: Problem): string {
  const request = problem.request_id ? ` (request ${problem.request_id})` : "";
  // Which fields a validation failure is about: the detail alone often only says "invalid input".
  const fields = problem.errors?.length
    ? ` [${cell(problem.errors.map((e) => `${e.path || "body"}: ${e.message}`).join("; "))}]`
    : "";
  return `gw: ${cell(problem.title)}: ${cell(problem.detail)}${fields}${request}`;
}
