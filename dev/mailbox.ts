/**
 * The dev mailbox: a local stand-in for the HTTP email API the Worker sends through
 * (workers/shared/mail.ts, Resend's shape), so `npm start` and the tests send real mail requests
 * over real HTTP and nothing leaves the machine.
 *
 * - `POST /emails` checks what the real API checks: `Authorization: Bearer <key>` (missing → 401
 *   `missing_api_key`, wrong → 403 `invalid_api_key`), a JSON object with `from`, `to` (an address or
 *   1–50 of them), a non-empty `subject` and `text` and/or `html` (else 422 `validation_error`);
 *   errors are `{statusCode, name, message}`. Accepted → 200 `{id}`, the message kept in memory.
 * - `GET /messages` (optionally `?to=<address>`): the kept messages, oldest first, as JSON.
 * - `DELETE /messages`: forgets them.
 * - `onMessage` sees each accepted message (`npm start` prints its links).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A message as the mailbox accepted it. */
export interface MailboxMessage {
  id: string;
  from: string;
  to: string[];
  subject: string;
  text: string | null;
  html: string | null;
  /** ISO 8601. */
  receivedAt: string;
}

/** A running mailbox: its base URL (what MAIL_API_URL points at), its key, its messages. */
export interface Mailbox {
  url: string;
  apiKey: string;
  messages(): MailboxMessage[];
  stop(): Promise<void>;
}

export interface MailboxOptions {
  /** 0 or omitted: OS-assigned. */
  port?: number;
  /** The key the mailbox accepts (default `re_dev_mailbox`). */
  apiKey?: string;
  onMessage?: (message: MailboxMessage) => void;
}

/** Largest request body accepted (Resend's own limit is 40 MB with attachments; there are none here). */
const MAX_BODY_BYTES = 1024 * 1024;
const ADDRESS = /^[^<>\s@]+@[^<>\s@]+$/;
/** `a@b.c` or `Name <a@b.c>`. */
const SENDER = /^(?:[^<>\r\n]+ <[^<>\s@]+@[^<>\s@]+>|[^<>\s@]+@[^<>\s@]+)$/;

/** The http(s) links in a text, in order: what `npm start` prints for each message. */
export function linksOf(text: string | null): string[] {
  return text ? [...text.matchAll(/https?:\/\/[^\s<>"')]+/g)].map((m) => m[0]) : [];
}

/** Starts the mailbox on 127.0.0.1. */
export async function startMailbox(options: MailboxOptions = {}): Promise<Mailbox> {
  const apiKey = options.apiKey ?? "re_dev_mailbox";
  const kept: MailboxMessage[] = [];
  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://mailbox");
    if (url.pathname === "/messages" && req.method === "GET") {
      const to = url.searchParams.get("to")?.toLowerCase();
      return json(res, 200, to ? kept.filter((m) => m.to.some((a) => a.toLowerCase() === to)) : kept);
    }
    if (url.pathname === "/messages" && req.method === "DELETE") {
      kept.length = 0;
      return json(res, 200, { deleted: true });
    }
    if (url.pathname !== "/emails")
      return problem(res, 404, "not_found", "The requested endpoint does not exist.");
    if (req.method !== "POST") return problem(res, 405, "method_not_allowed", "Method is not allowed.");

    const auth = req.headers.authorization ?? "";
    if (!/^Bearer \S/.test(auth))
      return problem(res, 401, "missing_api_key", "Missing API key in the authorization header.");
    if (auth !== `Bearer ${apiKey}`) return problem(res, 403, "invalid_api_key", "API key is invalid.");
    if (!/^application\/json\b/i.test(req.headers["content-type"] ?? ""))
      return problem(res, 422, "validation_error", "Content-Type must be application/json.");

    const raw = await readBody(req);
    if (raw === null) return problem(res, 413, "validation_error", "The request body is too large.");
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return problem(res, 422, "validation_error", "The request body is not valid JSON.");
    }
    const message = validate(body);
    if (typeof message === "string") return problem(res, 422, "validation_error", message);
    kept.push(message);
    options.onMessage?.(message);
    return json(res, 200, { id: message.id });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    messages: () => [...kept],
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The message, or what is wrong with the body (the first problem, as the real API names it). */
function validate(body: unknown): MailboxMessage | string {
  if (!body || typeof body !== "object" || Array.isArray(body))
    return "The request body must be a JSON object.";
  const b = body as Record<string, unknown>;
  if (typeof b.from !== "string" || !SENDER.test(b.from))
    return "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.";
  const to = typeof b.to === "string" ? [b.to] : b.to;
  if (
    !Array.isArray(to) ||
    to.length < 1 ||
    to.length > 50 ||
    !to.every((a) => typeof a === "string" && ADDRESS.test(a))
  )
    return "Invalid `to` field. Give an email address or an array of 1 to 50 of them.";
  if (typeof b.subject !== "string" || b.subject.trim() === "") return "Missing `subject` field.";
  const text = typeof b.text === "string" ? b.text : null;
  const html = typeof b.html === "string" ? b.html : null;
  if (text === null && html === null) return "Missing `text` or `html` field.";
  return {
    id: randomUUID(),
    from: b.from,
    to: to as string[],
    subject: b.subject,
    text,
    html,
    receivedAt: new Date().toISOString(),
  };
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function problem(res: ServerResponse, status: number, name: string, message: string): void {
  json(res, status, { statusCode: status, name, message });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
