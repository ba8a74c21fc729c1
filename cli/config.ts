/**
 * Where the CLI finds the gateway and its admin token: `--url`/`--token` flags, then the
 * `GW_URL`/`GW_ADMIN_TOKEN` environment, then the config file `gw login` writes
 * (`$GW_CONFIG`, else `$XDG_CONFIG_HOME/gw/config.json`, else `~/.config/gw/config.json`, mode 0600).
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CliError, EXIT, usageError } from "./errors";

/** What `gw login` saves. */
export interface StoredConfig {
  url?: string;
  token?: string;
}

/** The gateway and admin token a command talks to. */
export interface Target {
  url: string;
  token: string;
}

/** The config file's path: `GW_CONFIG` wins, then the XDG base directory spec. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GW_CONFIG) return env.GW_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "gw", "config.json");
}

/** Reads the config file; a missing file is an empty config, a broken one an error (never ignored). */
export function readConfig(path: string, warn: (line: string) => void = () => {}): StoredConfig {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError(EXIT.unexpected, { title: "Config unreadable", detail: `${path}: ${String(error)}` });
  }
  // The file holds a credential: say so when others can read it (ssh does the same for its keys).
  if ((statSync(path).mode & 0o077) !== 0) warn(`${path} is readable by other users; run chmod 600 on it`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new CliError(EXIT.unexpected, { title: "Config unreadable", detail: `${path} is not JSON` });
  }
  const config = (parsed ?? {}) as Record<string, unknown>;
  return {
    ...(typeof config.url === "string" ? { url: config.url } : {}),
    ...(typeof config.token === "string" ? { token: config.token } : {}),
  };
}

/**
 * Writes the config file with mode 0600 in a 0700 directory. The file is written beside the old one
 * and renamed over it, so a crash never leaves half a file, and it is never readable by others, even
 * for an instant (the mode is set at creation, not after).
 */
export function writeConfig(path: string, config: StoredConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600); // the umask may have narrowed it further, never widened; be exact
  renameSync(temp, path);
}

/** Checks a gateway URL: http(s), no credentials in it; returns it without a trailing slash. */
export function normalizeUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`'${value}' is not a URL (e.g. https://gateway.example.com)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw usageError(`'${value}' is not an http(s) URL`);
  if (url.username || url.password) throw usageError("put the token in --token, not in the URL");
  return url.toString().replace(/\/+$/, "");
}

/** Flag, then environment, then file, for each of URL and token separately. */
export function resolveTarget(
  flags: { url?: string | undefined; token?: string | undefined },
  env: NodeJS.ProcessEnv,
  file: StoredConfig,
): Partial<Target> {
  const url = flags.url ?? (env.GW_URL || undefined) ?? file.url;
  const token = flags.token ?? (env.GW_ADMIN_TOKEN || undefined) ?? file.token;
  return { ...(url ? { url: normalizeUrl(url) } : {}), ...(token ? { token } : {}) };
}

/** The target of a command that needs the gateway; a usage error naming what is missing. */
export function requireTarget(target: Partial<Target>): Target {
  if (!target.url || !target.token) {
    const missing = !target.url ? "gateway URL" : "admin token";
    throw usageError(`no ${missing}: run 'gw login --url … --token …', or set GW_URL and GW_ADMIN_TOKEN`);
  }
  return { url: target.url, token: target.token };
}
