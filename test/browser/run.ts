/**
 * `npm run test:browser`: the portal and console in Debian's Chromium against one local stack started
 * as `npm start` starts it (node:test; the harness starts the stack and the browser once for both
 * suites). Artifacts (screenshots, the stack's log, report.md) land in test/browser/artifacts/.
 */
import "./portal";
import "./console";
