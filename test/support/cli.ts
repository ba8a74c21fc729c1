/**
 * The CLI test files' shared parts (node:test, against the local stack): run the real `gw` with
 * nothing of this process's GW_* environment, and make fixtures through the admin API.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { ROOT } from "./local-stack";

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cli/bin.mjs` in `cwd`. Each call says which config file (default `<cwd>/none.json`, which
 * does not exist) and extra environment it has; nothing of this process's GW_* variables leaks in.
 */
export function runGw(
  args: string[],
  options: { cwd: string; config?: string; env?: Record<string, string> },
): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("GW_")));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${ROOT}cli/bin.mjs`, ...args], {
      cwd: options.cwd,
      env: { ...env, GW_CONFIG: options.config ?? `${options.cwd}/none.json`, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** `POST` to the admin API of the stack at `base`; asserts 201 and answers the body. */
export async function adminPost<T>(base: string, token: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, `POST ${path}: ${await res.clone().text()}`);
  return (await res.json()) as T;
}
