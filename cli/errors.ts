/**
 * The CLI's exit codes and its one error type. Every failure a command meets becomes a `CliError`
 * carrying the exit code and, when the gateway answered, its problem+json; `main.ts` alone prints
 * it and exits.
 */

/** Exit codes, stable for scripts (listed in `gw --help` and the README). */
export const EXIT = {
  ok: 0,
  /** A bug or anything not listed below. */
  unexpected: 1,
  /** Bad flags or arguments, or no gateway URL/token configured. */
  usage: 2,
  /** The admin token was refused (401/403). */
  auth: 3,
  /** The plan, tenant or key does not exist (404). */
  notFound: 4,
  /** The gateway refused the request as it is (400, 409, 422 and other 4xx). */
  refused: 5,
  /** The gateway is unreachable, timed out, rate-limited us (429) or failed (5xx). */
  unavailable: 6,
  /** `gw reconcile` ran and found differences. */
  differences: 7,
  /** `gw audit verify` found a broken audit chain (an edited, missing or reordered entry). */
  brokenChain: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An RFC 9457 problem as the gateway sends it (or as the CLI makes one for a local failure). */
export interface Problem {
  type?: string;
  title: string;
  status?: number;
  detail: string;
  code?: string;
  request_id?: string;
  errors?: { path: string; message: string }[];
}

/** A failure to report: one line on stderr (or the problem as JSON with `--json`) and an exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly problem: Problem;

  constructor(exitCode: ExitCode, problem: Problem) {
    super(`${problem.title}: ${problem.detail}`);
    this.name = "CliError";
    this.exitCode = exitCode;
    this.problem = problem;
  }
}

/** A usage error (exit 2): a bad flag value the parser could not catch. */
export function usageError(detail: string): CliError {
  return new CliError(EXIT.usage, { title: "Usage error", detail, code: "usage" });
}

/** The exit code for an HTTP status the gateway answered with. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 429 || status >= 500) return EXIT.unavailable;
  if (status >= 400) return EXIT.refused;
  return EXIT.unexpected;
}
