// Copies the web faces' third-party browser files from node_modules into the Worker's static assets
// (workers/web/public/_static/vendor/), so pages load them from this origin: no CDN, works offline,
// passes the pages' CSP. Run by `npm install` / `npm ci` (package.json "postinstall"); the copies
// are not committed (.gitignore), the pinned package version in package-lock.json is the source.
// Plain Node, no dependencies: it runs before anything else is known to be installed.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "workers/web/public/_static/vendor");

/** [source under node_modules, name under vendor/]. */
const FILES = [
  ["uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uPlot.LICENSE"],
];

mkdirSync(target, { recursive: true });
for (const [from, to] of FILES) {
  const source = join(root, "node_modules", from);
  // A missing file means the package is absent or its layout changed: fail the install loudly,
  // rather than deploy pages whose charts 404.
  if (!existsSync(source)) {
    console.error(`vendor-web-assets: ${source} is missing (is uplot installed?)`);
    process.exit(1);
  }
  copyFileSync(source, join(target, to));
}
console.log(`vendor-web-assets: ${FILES.length} files → ${target}`);
