/**
 * Child processes for the local stack: spawn one in its own process group (so its own children, such as
 * workerd under wrangler, can be stopped with it), stop it gracefully, and wait for an HTTP endpoint.
 */
import { type ChildProcess, spawn } from "node:child_process";

/** A child process running in its own process group. */
export interface ManagedProcess {
  child: ChildProcess;
  /** Settles when the process exits: its exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals>;
  /**
   * Sends `signal` to the process itself (so it can shut down its children cleanly), then after
   * `graceMs` SIGKILLs whatever is left of its group. Resolves once the process has exited.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** Spawns `command` in a new process group, stdin closed, stdout/stderr shared with this process. */
export function spawnInGroup(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): ManagedProcess {
  const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "inherit", "inherit"] });
  let running = true;
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once("exit", (code, signal) => {
      running = false;
      resolve(code ?? signal ?? 1);
    });
    child.once("error", (err) => {
      running = false;
      console.error(`${command}: ${err.message}`);
      resolve(1);
    });
  });
  // Last resort if this process exits without stopping the child: leave nothing of its group behind.
  process.once("exit", () => killGroup(child, "SIGKILL"));

  return {
    child,
    exited,
    stop: async (signal = "SIGTERM", graceMs = 5_000) => {
      if (running) child.kill(signal);
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      // The process is gone; make sure none of its group outlived it.
      killGroup(child, "SIGTERM");
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Polls `url` until it answers 200. Rejects after `timeoutMs`, or as soon as `exited` settles (the
 * server died before it became ready). Connection errors while it starts are expected and stay silent.
 */
export async function waitForOk(
  url: string,
  options: { timeoutMs: number; exited: Promise<unknown> },
): Promise<void> {
  let gone = false;
  void options.exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + options.timeoutMs;
  while (!gone) {
    if (Date.now() > deadline)
      throw new Error(`${url} did not answer 200 within ${options.timeoutMs / 1000} s`);
    // A slow first answer (the Worker's first request loads its bundle) may time out mid-body: that
    // is one more try, not a failure.
    const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      .then(async (res) => {
        await res.arrayBuffer(); // read it all: a cancelled body makes workerd log a broken pipe
        return res.status === 200;
      })
      .catch(() => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error("the process exited before it became ready");
}
