/**
 * `npm run check:config`: runs the Worker's own config schema (workers/config.ts) on the vars in
 * wrangler.toml, read the way wrangler reads them, and exits 1 with the same message every request
 * would get as a 503 `misconfigured`. CI runs it before the dry-run deploy; `npm start` runs it on
 * the vars it is about to hand to `wrangler dev`.
 *
 *   npm run check:config                                  # wrangler.toml [vars]
 *   npm run check:config -- --env staging                 # [env.staging.vars]
 *   npm run check:config -- --var MAX_BODY_BYTES:10MB     # with an override, as `wrangler dev --var`
 *   npm run check:config -- --env-file .dev.vars          # overrides (and secrets) from a KEY=VALUE file
 *
 * Secrets live in Cloudflare, not in wrangler.toml: they are checked only when `--env-file` gives
 * them or `--secrets` asks for them.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { type ConfigResult, parseConfig } from "../workers/config";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The `[vars]` of wrangler.toml (of `[env.<name>]` when given), as wrangler resolves them. */
export function wranglerVars(options: { config?: string; env?: string } = {}): Record<string, unknown> {
  const config = unstable_readConfig(
    { config: options.config ?? `${ROOT}wrangler.toml`, env: options.env },
    { hideWarnings: true },
  );
  return { ...config.vars };
}

/** `KEY=VALUE` lines (`.dev.vars` / dotenv style; `#` comments; optional double quotes). */
export function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith("#")) continue;
    const value = match[2] as string;
    out[match[1] as string] = /^".*"$/.test(value) ? (JSON.parse(value) as string) : value;
  }
  return out;
}

/** wrangler.toml's vars with `overrides` on top, through the Worker's schema. */
export function checkConfig(
  overrides: Record<string, string> = {},
  options: { config?: string; env?: string; secrets?: boolean } = {},
): ConfigResult {
  return parseConfig({ ...wranglerVars(options), ...overrides }, { secrets: options.secrets ?? true });
}

/** For `npm start`: throws with the schema's message unless the vars it will pass are valid. */
export function assertConfig(overrides: Record<string, string>): void {
  const result = checkConfig(overrides);
  if (!result.ok) throw new Error(result.message);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      env: { type: "string" },
      var: { type: "string", multiple: true },
      "env-file": { type: "string" },
      secrets: { type: "boolean" },
    },
  });
  const overrides: Record<string, string> = values["env-file"] ? readEnvFile(values["env-file"]) : {};
  for (const pair of values.var ?? []) {
    const at = pair.indexOf(":");
    if (at < 1) throw new Error(`--var takes NAME:VALUE, got "${pair}"`);
    overrides[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const withSecrets = values.secrets ?? ["CLAIMS_SECRET", "DATABASE_URL"].some((k) => k in overrides);
  const result = checkConfig(overrides, { config: values.config, env: values.env, secrets: withSecrets });
  if (!result.ok) {
    console.error(result.message);
    process.exit(1);
  }
  const what = withSecrets ? "vars and secrets" : "vars (secrets not checked)";
  console.log(
    `Configuration OK: ${what} of ${values.config ?? "wrangler.toml"}${values.env ? ` [env.${values.env}]` : ""}.`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
