/**
 * The HTTP control of a running `stripe listen` (dev/stripe-listen.ts), for `npm start`:
 *
 *   GET  /faults       the faults in force
 *   PUT  /faults       replaces them (JSON, dev/stripe-listen-faults.ts); 400 naming the problem if bad
 *   POST /flush        reads the events now and answers when every one seen is delivered or given up
 *   GET  /deliveries   what became of each delivery so far (`DeliveryOutcome`s)
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { StripeListen } from "./stripe-listen";
import { FaultsSchema } from "./stripe-listen-faults";

export interface ListenControl {
  url: string;
  stop(): Promise<void>;
}

/** Serves the control of `listen` on 127.0.0.1 (`port` 0: OS-assigned). */
export async function startListenControl(listen: StripeListen, port = 0): Promise<ListenControl> {
  const server = createServer((req, res) => {
    handle(listen, req, res).catch((err: unknown) => send(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const { port: actual } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actual}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function handle(listen: StripeListen, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const route = `${req.method} ${new URL(req.url ?? "/", "http://control").pathname}`;
  if (route === "GET /faults") return send(res, 200, listen.faults());
  if (route === "GET /deliveries") return send(res, 200, { data: listen.outcomes });
  if (route === "POST /flush") {
    await listen.flush();
    return send(res, 200, { data: listen.outcomes });
  }
  if (route === "PUT /faults") {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return send(res, 400, { error: "the body must be JSON" });
    }
    const faults = FaultsSchema.safeParse(body);
    if (!faults.success) {
      const issues = faults.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`);
      return send(res, 400, { error: issues.join("; ") });
    }
    listen.setFaults(faults.data);
    return send(res, 200, listen.faults());
  }
  send(res, 404, { error: "GET /faults, PUT /faults, POST /flush or GET /deliveries" });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}
