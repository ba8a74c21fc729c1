// Types for `env` and `exports` from "cloudflare:workers" inside tests.
type GatewayBindings = import("../workers/env").Bindings;

declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("../workers/index");
  }
  interface Env extends GatewayBindings {}
}
