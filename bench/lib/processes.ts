/**
 * Server processes of the benchmark: each in its own process group (so its children, such as the
 * workerd under Miniflare, go with it), stdin a pipe (a child that watches it exits when the bench
 * dies, even by SIGKILL), stderr to a log file, and a JSON "ready" line read from stdout.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { createInterface } from "node:readline";

export interface Server<T> {
  name: string;
  pid: number;
  ready: T;
  logFile: string;
  exited: Promise<number | NodeJS.Signals>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const groups = new Set<number>();

// Last resort: whatever happens to this process, leave no server behind.
process.once("exit", () => {
  for (const pgid of groups) killGroup(pgid, "SIGKILL");
});

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: already gone
  }
}

/**
 * Spawns `command` and waits for its first stdout line that parses as JSON (`readyTimeoutMs`).
 * Without `readyLine`, resolves once spawned (for servers that print nothing, e.g. nginx).
 */
export async function startServer<T>(
  name: string,
  command: string,
  args: string[],
  opts: {
    cwd: string;
    env?: NodeJS.ProcessEnv;
    logFile: string;
    readyTimeoutMs: number;
    readyLine?: boolean;
    /** Every later JSON line on stdout (after the ready line). */
    onLine?: (value: unknown) => void;
  },
): Promise<Server<T>> {
  const log = openSync(opts.logFile, "a");
  const child: ChildProcess = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ["pipe", "pipe", log],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  groups.add(pid);
  let running = true;
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once("exit", (code, signal) => {
      running = false;
      resolve(code ?? signal ?? 1);
    });
    child.once("error", () => {
      running = false;
      resolve(1);
    });
  });

  const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 8_000) => {
    if (running) child.kill(signal);
    const timer = setTimeout(() => killGroup(pid, "SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
    killGroup(pid, "SIGKILL"); // anything of its group that outlived it
    groups.delete(pid);
    child.stdin?.destroy();
  };

  if (opts.readyLine === false) {
    child.stdout?.resume();
    return { name, pid, ready: undefined as T, logFile: opts.logFile, exited, stop };
  }

  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  let isReady = false;
  const ready = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${name} not ready within ${opts.readyTimeoutMs / 1000} s (log: ${opts.logFile})`)),
      opts.readyTimeoutMs,
    );
    lines.on("line", (line) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return; // not JSON: not for us
      }
      if (isReady) {
        opts.onLine?.(value);
        return;
      }
      isReady = true;
      clearTimeout(timer);
      resolve(value as T);
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${how}) before it was ready (log: ${opts.logFile})`));
    });
  }).catch(async (err: unknown) => {
    await stop("SIGKILL", 0);
    throw err;
  });
  return { name, pid, ready, logFile: opts.logFile, exited, stop };
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export async function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ stdout: string; stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new Error(
            `${command} ${args.join(" ")} exited ${code ?? signal}:\n${(stderr || stdout).slice(-2000)}`,
          ),
        );
    });
  });
}
