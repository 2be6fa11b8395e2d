// One HTTP exchange: POST a JSON-RPC body, return the parsed answer. Knows
// nothing of ids or batching; turns fetch failures into the SDK's errors.
// Timeouts are per call (batching.ts): calls sharing a request may have
// different ones, and the request is aborted once no call waits for it.

import { AbortError, ConnectionError } from "./errors.js";

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

export interface PostOptions {
  fetch: FetchFn;
  headers: Record<string, string>;
  /** Aborts the exchange (the batcher, once no call waits for the answer). */
  signal?: AbortSignal;
}

/** Parsed JSON answer, or `undefined` for an empty one (HTTP 204). */
export async function postJson(url: string, body: string, options: PostOptions): Promise<unknown> {
  let response: Response;
  let text: string;
  try {
    response = await options.fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", ...options.headers },
      body,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // Reading the body is part of the exchange: an abort here counts too.
    text = await response.text();
  } catch (cause) {
    throw options.signal?.aborted
      ? new AbortError("the request was aborted", { cause })
      : new ConnectionError(`could not reach ${url}: ${describe(cause)}`, { cause });
  }
  if (text.length === 0 && response.status === 204) return undefined;
  try {
    return JSON.parse(text);
  } catch (cause) {
    // Not JSON-RPC at all: a proxy page, an overloaded server's 503, ...
    throw new ConnectionError(`HTTP ${response.status} from ${url} without a JSON-RPC answer`, {
      cause,
      status: response.status,
    });
  }
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    // Node's fetch hides the useful part (ECONNREFUSED, ...) in `cause`.
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}
