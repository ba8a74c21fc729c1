/**
 * `gw login [--url U] [--token T]`: checks the token against the gateway (one cheap admin read) and
 * only then saves URL and token to the config file (mode 0600). A refused token saves nothing.
 */
import { Command } from "commander";
import { AdminClient } from "../client";
import { configPath, readConfig, requireTarget, resolveTarget, writeConfig } from "../config";
import type { GlobalFlags } from "../context";
import { createOutput } from "../output";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The `login` command. */
export function loginCommand(): Command {
  return new Command("login")
    .description("check a gateway URL and admin token, then save them to the config file")
    .action(async (_flags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      const out = createOutput(Boolean(flags.json));
      const path = configPath();
      const target = requireTarget(resolveTarget(flags, process.env, readConfig(path)));
      // Throws (exit 3 for a refused token, 6 for an unreachable gateway) before anything is written.
      await new AdminClient(target.url, target.token).request("GET", "/admin/v1/plans", {
        query: { limit: 1 },
      });
      const url = new URL(target.url);
      if (url.protocol === "http:" && !LOOPBACK.has(url.hostname))
        out.note(`gw: warning: ${target.url} is plain http: the admin token crosses the network unencrypted`);
      writeConfig(path, target);
      out.data({ url: target.url, config: path }, (r) => `logged in to ${r.url}; saved to ${r.config}`);
    });
}
