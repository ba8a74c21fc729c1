/**
 * The `gw` command line (cli/bin.mjs runs it): the command tree, the global flags, and the one place
 * that turns a failure into its stderr line (or problem JSON with `--json`) and exit code.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { auditCommand } from "./commands/audit";
import { keysCommand } from "./commands/keys";
import { loginCommand } from "./commands/login";
import { plansCommand } from "./commands/plans";
import { portalLinkCommand } from "./commands/portal-link";
import { reconcileCommand } from "./commands/reconcile";
import { routesCommand } from "./commands/routes";
import { tenantsCommand } from "./commands/tenants";
import { usageCommand } from "./commands/usage";
import { webhooksCommand } from "./commands/webhooks";
import { CliError, EXIT, type Problem } from "./errors";
import { errorLine } from "./output";

const HELP_AFTER = `
Gateway and token, first found wins:
  --url / --token, then GW_URL / GW_ADMIN_TOKEN, then the file 'gw login' writes
  ($GW_CONFIG, else $XDG_CONFIG_HOME/gw/config.json, else ~/.config/gw/config.json; mode 0600).
  Tenants may be named by id (ten_…) or slug; plans by id (plan_…) or name.

Exit codes:
  0  ok
  1  unexpected error
  2  usage error (bad flags or arguments, no gateway or token configured)
  3  auth: the admin token was refused (401/403)
  4  not found (404)
  5  refused: conflict or validation (400/409/422)
  6  gateway unreachable, timed out or failing (429/5xx)
  7  reconcile found differences
  8  audit verify found a broken chain (an edited, missing or reordered entry)

--json prints only data on stdout, and errors as problem+json on stderr.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** The whole command tree. */
export function program(): Command {
  const gw = new Command("gw")
    .description("operate an edge gateway over its admin API")
    .version(version())
    .option("--url <url>", "gateway URL (overrides GW_URL and the config file)")
    .option("--token <token>", "admin token (overrides GW_ADMIN_TOKEN and the config file)")
    .option("--json", "print data as JSON on stdout, errors as JSON on stderr")
    .addHelpText("after", HELP_AFTER)
    .showSuggestionAfterError();
  for (const command of [
    loginCommand(),
    plansCommand(),
    tenantsCommand(),
    keysCommand(),
    usageCommand(),
    reconcileCommand(),
    portalLinkCommand(),
    auditCommand(),
    webhooksCommand(),
    routesCommand(),
  ])
    gw.addCommand(command);
  // Commands made with `new Command()` inherit nothing: set, on every one, that a parse error throws
  // (so it gets our exit code 2 and one-line format) instead of printing and exiting with 1.
  const configure = (command: Command): void => {
    command.exitOverride().configureOutput({ outputError: () => {} });
    for (const sub of command.commands) configure(sub);
  };
  configure(gw);
  return gw;
}

/** The problem and exit code of anything a run threw. */
function failure(error: unknown): { code: number; problem: Problem | null } {
  if (error instanceof CliError) return { code: error.exitCode, problem: error.problem };
  if (error instanceof CommanderError) {
    // Help and --version "fail" with exit code 0; a missing command prints help and is a usage error.
    if (error.exitCode === 0) return { code: EXIT.ok, problem: null };
    if (error.code === "commander.help") return { code: EXIT.usage, problem: null };
    const detail = error.message.replace(/^error: /, "");
    return { code: EXIT.usage, problem: { title: "Usage error", detail, code: "usage" } };
  }
  return {
    code: EXIT.unexpected,
    problem: { title: "Unexpected error", detail: error instanceof Error ? error.message : String(error) },
  };
}

/** Runs `gw` with `argv` (as process.argv: node, script, args…); resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return EXIT.ok;
  } catch (error) {
    const { code, problem } = failure(error);
    if (problem) {
      const json = argv.includes("--json");
      process.stderr.write(`${json ? JSON.stringify(problem) : errorLine(problem)}\n`);
    }
    return code;
  }
}
