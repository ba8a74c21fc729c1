/**
 * The local WebSocket→TCP bridge that lets the Worker's neon driver (Postgres over a WebSocket) reach a
 * plain Postgres. Only the target's host:port may be dialled; each WebSocket is piped to its own TCP
 * socket, and a close on either side closes the other.
 */
import { createServer, type IncomingMessage } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";

/** A running bridge: its port, the value for the Worker's `PG_WS_PROXY`, and how to stop it. */
export interface BridgeHandle {
  port: number;
  /** `127.0.0.1:<port>/v1`; the Worker's driver appends `?address=<host>:<port>`. */
  wsProxy: string;
  stop(): Promise<void>;
}

/**
 * How long the bridge waits before closing one side after the other closed. The neon Pool never closes
 * its WebSocket on `end()` (it only sends Terminate), and a hang-up racing the Pool's own shutdown
 * surfaces in workerd as an error.
 */
const LINGER_MS = 100;

/** Starts the bridge on 127.0.0.1 (`port` 0 or omitted: OS-assigned) in front of the Postgres at `target`. */
export async function startBridge(opts: { target: string; port?: number }): Promise<BridgeHandle> {
  const target = new URL(opts.target);
  const allowed = `${target.hostname}:${target.port || "5432"}`.toLowerCase();
  const live = new Set<{ ws: WebSocket; tcp: Socket }>();
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_req, res) => {
    res.writeHead(426, { "content-type": "text/plain" }).end("WebSocket upgrade required\n");
  });

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    const address = new URL(req.url ?? "/", "http://bridge").searchParams.get("address")?.toLowerCase();
    if (address !== allowed) {
      socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\nonly ${allowed} is allowed\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const tcp = connect(Number(target.port || 5432), target.hostname);
      const pair = { ws, tcp };
      live.add(pair);
      pipe(ws, tcp, () => live.delete(pair));
    });
  });
  server.on("clientError", (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    wsProxy: `127.0.0.1:${port}/v1`,
    stop: async () => {
      for (const { ws, tcp } of live) {
        ws.terminate();
        tcp.destroy();
      }
      live.clear();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function pipe(ws: WebSocket, tcp: Socket, onDone: () => void): void {
  let closing = false;
  const closeBoth = () => {
    if (closing) return;
    closing = true;
    setTimeout(() => {
      tcp.destroySoon();
      if (ws.readyState === ws.OPEN) ws.close();
      onDone();
    }, LINGER_MS).unref();
  };

  tcp.setNoDelay(true);
  // The default binaryType ("nodebuffer") delivers every frame as one Buffer.
  ws.on("message", (data) => {
    if (tcp.destroyed) return;
    tcp.write(data as Buffer);
    // Terminate is a client's last message. Postgres hangs up after it, PGlite's socket server does
    // not: end the TCP side ourselves so the connection is released and the close reaches the Worker.
    if (endsWithTerminate(data as Buffer)) tcp.end();
  });
  tcp.on("data", (chunk) => {
    if (ws.readyState === ws.OPEN) ws.send(chunk);
  });
  ws.on("close", closeBoth);
  ws.on("error", closeBoth);
  tcp.on("close", closeBoth);
  tcp.on("error", closeBoth);
}

/** The Postgres Terminate message ('X', length 4). */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

function endsWithTerminate(frame: Buffer): boolean {
  return frame.length >= TERMINATE.length && frame.subarray(-TERMINATE.length).equals(TERMINATE);
}
