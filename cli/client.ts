/**
 * The admin API over HTTP: bearer token, JSON in and out, cursor pages followed to the end, and
 * every failure turned into a `CliError` — the gateway's problem+json kept whole, anything else
 * (unreachable, timed out, not JSON) made into one.
 */
import { CliError, EXIT, exitCodeForStatus, type Problem } from "./errors";

/** Long enough for a tenant create that waits on Stripe; short enough that a hung gateway is noticed. */
const TIMEOUT_MS = 30_000;
/** Answers after which the gateway may not have finished a request: worth one retry under an Idempotency-Key. */
const RETRYABLE = new Set([502, 503, 504]);

/** Options of one admin API call. */
export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** Makes the creating POSTs safe to retry (the gateway replays the first answer for 24 h). */
  idempotencyKey?: string;
}

/** A page of a cursor-paginated admin list. */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** A client of one gateway's admin API. */
export class AdminClient {
  readonly url: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    this.url = url;
    this.#token = token;
  }

  /** One call; the parsed JSON body of a 2xx, else a `CliError` with the problem. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    // Relative to the base, so a gateway mounted under a path prefix keeps it.
    const url = new URL(path.replace(/^\//, ""), `${this.url}/`);
    for (const [name, value] of Object.entries(options.query ?? {}))
      if (value !== undefined) url.searchParams.set(name, String(value));
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
    };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
    const send = () =>
      fetch(url, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    let res: Response;
    try {
      res = await send();
      // With an Idempotency-Key a retry is safe (the gateway replays or finishes the first attempt),
      // so a lost connection or a gateway hiccup gets one more try instead of an unknown outcome.
      if (options.idempotencyKey && RETRYABLE.has(res.status)) {
        await res.arrayBuffer();
        res = await retryAfterPause(send);
      }
    } catch (error) {
      if (!options.idempotencyKey) throw unreachable(this.url, error);
      try {
        res = await retryAfterPause(send);
      } catch (again) {
        throw unreachable(this.url, again);
      }
    }
    const text = await res.text().catch((error) => {
      throw unreachable(this.url, error);
    });
    if (!res.ok) throw new CliError(exitCodeForStatus(res.status), problemOf(res, text));
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(EXIT.unexpected, {
        title: "Unexpected answer",
        status: res.status,
        detail: `${method} ${url.pathname} answered ${res.status} with a body that is not JSON`,
        ...requestId(res),
      });
    }
  }

  /**
   * A streamed download (an export): the response once its headers arrived, its body still to read.
   * The timeout covers only the wait for the headers — a long export keeps streaming.
   */
  async download(path: string, query: Record<string, string | undefined> = {}): Promise<Response> {
    const url = new URL(path.replace(/^\//, ""), `${this.url}/`);
    for (const [name, value] of Object.entries(query))
      if (value !== undefined) url.searchParams.set(name, value);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException("timed out", "TimeoutError")), TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${this.#token}` }, signal: abort.signal });
    } catch (error) {
      throw unreachable(this.url, error);
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw new CliError(exitCodeForStatus(res.status), problemOf(res, text));
    }
    return res;
  }

  /** Every item of a paginated list, page by page (`onPage` sees the running count). */
  async all<T>(
    path: string,
    query: Record<string, string | number | undefined> = {},
    onPage: (count: number) => void = () => {},
  ): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.request<Page<T>>("GET", path, { query: { ...query, limit: 200, cursor } });
      items.push(...page.data);
      onPage(items.length);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return items;
  }
}

async function retryAfterPause(send: () => Promise<Response>): Promise<Response> {
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return await send();
}

function requestId(res: Response): { request_id?: string } {
  const id = res.headers.get("x-request-id");
  return id ? { request_id: id } : {};
}

/** The gateway's problem+json as sent; a problem made from the status for any other error body. */
function problemOf(res: Response, text: string): Problem {
  try {
    const body = JSON.parse(text) as Partial<Problem>;
    if (typeof body.title === "string" && typeof body.detail === "string")
      return { ...body, title: body.title, detail: body.detail, status: res.status };
  } catch {
    // Not JSON: a proxy in front of the gateway, or not a gateway at all.
  }
  return {
    title: res.statusText || `HTTP ${res.status}`,
    status: res.status,
    detail: `the gateway answered ${res.status} without a problem+json body: ${text.slice(0, 200)}`,
    ...requestId(res),
  };
}

function unreachable(url: string, error: unknown): CliError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why =
    (error as Error).name === "TimeoutError"
      ? `no answer within ${TIMEOUT_MS / 1000} s`
      : (cause?.code ?? cause?.message ?? String(error));
  return new CliError(EXIT.unavailable, {
    title: "Gateway unreachable",
    detail: `cannot reach ${url} (${why})`,
    code: "unreachable",
  });
}
