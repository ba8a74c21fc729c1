/**
 * The Worker's composition root and only default export.
 */

import { createApp } from "./app";
import type { Bindings } from "./env";

export { TenantLimiter } from "../durable-objects/tenant";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Bindings>;
