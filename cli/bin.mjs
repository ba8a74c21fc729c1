#!/usr/bin/env node
// The `gw` executable (package.json "bin"): registers tsx's loader, so the TypeScript sources run on
// Node 20 without a build step, then runs the CLI and exits with its code.
import { register } from "tsx/esm/api";

register();
const { run } = await import("./main.ts");
process.exitCode = await run(process.argv);
