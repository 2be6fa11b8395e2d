// createClient: the typed entry point. `client.auth.login(params)` calls the
// method `auth.login`; the shape comes from the generated `Procedures` type and
// the runtime is one Proxy, so new procedures need no hand-written code.

import { runBatch, type BatchBuilder, type BatchItem, type BatchOptions, type SettledTuple } from "./batch.js";
import { Dispatcher, type BatchingOptions } from "./batching.js";
import { procedures } from "./generated/procedures.js";
import { pathProxy } from "./proxy.js";
import { defaultRetry, withRetry, type RetryOptions } from "./retry.js";
import type { Authenticator } from "./session.js";
import type { FetchFn } from "./transport.js";
import type { CallFn, CallFns, CallMethod, CallOptions, Method, ProcedureTree, ResultOf } from "./types.js";

export interface ClientOptions {
  /** The JSON-RPC endpoint, e.g. `http://127.0.0.1:8080/rpc`. */
  url: string;
  /** `fetch` to use; the global one by default. */
  fetch?: FetchFn;
  /** Headers sent with every call. */
  headers?: Record<string, string>;
  /** An API key, sent as `X-Api-Key`. */
  apiKey?: string;
  /** A `Session` (or any `Authenticator`) supplying bearer tokens. */
  session?: Authenticator;
  /** Time each attempt of a call may take. Default 30 s. */
  timeoutMs?: number;
  /** Retry policy for queries (and mutations that opt in); `false` disables it. */
  retry?: Partial<RetryOptions> | false;
  /** Tick batching limits; `false` sends every call as its own request. */
  batching?: BatchingOptions | false;
}

/**
 * Every procedure as a plain call. Subscriptions are left out (they stream
 * over WebSocket: `createWsClient(...).notifications.subscribe(...)`), and so
 * are the methods that end them.
 */
export type Client = ProcedureTree<CallFns, CallMethod> & {
  /** Calls a method by name, the same as `client.<namespace>.<name>(...)`. */
  call<M extends CallMethod>(method: M, ...args: Parameters<CallFn<M>>): Promise<ResultOf<M>>;
  /** Sends several calls as one request and settles each on its own. */
  batch<const T extends readonly BatchItem<Method>[]>(build: (b: BatchBuilder) => T, options?: BatchOptions): Promise<SettledTuple<T>>;
};

/** What `client.ts` and `batch.ts` share: one attempt of a call, with credentials. */
export interface Core {
  dispatcher: Dispatcher;
  session: Authenticator | undefined;
  timeoutMs: number;
  /** Base headers plus the session's for `method`, plus `extra`; names lower-cased. */
  headersFor(method: string, extra?: Record<string, string>): Promise<Record<string, string>>;
}

export function createClient(options: ClientOptions): Client {
  const fetchFn = options.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchFn | undefined);
  if (!fetchFn) throw new TypeError("no fetch available: pass `fetch` in the client options");
  const base = lowerCase({ ...options.headers, ...(options.apiKey !== undefined ? { "x-api-key": options.apiKey } : {}) });
  const session = options.session;
  const dispatcher = new Dispatcher(options.url, fetchFn, options.batching ?? {});
  const timeoutMs = options.timeoutMs ?? 30_000;
  const clientRetry = options.retry;

  const core: Core = {
    dispatcher,
    session,
    timeoutMs,
    async headersFor(method, extra) {
      return { ...base, ...(session ? lowerCase(await session.headers(method)) : {}), ...lowerCase(extra ?? {}) };
    },
  };

  session?.attach((method, params, headers) =>
    dispatcher.call({ method, params, headers: { ...base, ...lowerCase(headers) }, timeoutMs }),
  );

  // One attempt; a session may repair it once (an expired token refreshed).
  async function attempt(method: string, params: unknown, call: CallOptions): Promise<unknown> {
    let headers = await core.headersFor(method, call.headers);
    const send = () => dispatcher.call({ method, params, headers, signal: call.signal, timeoutMs: call.timeoutMs ?? timeoutMs });
    let result: unknown;
    try {
      result = await send();
    } catch (error) {
      if (!session || call.signal?.aborted || !(await session.recover(method, error, headers))) throw error;
      headers = await core.headersFor(method, call.headers);
      result = await send();
    }
    session?.observe(method, result);
    return result;
  }

  function invoke(method: string, params: unknown, call: CallOptions = {}): Promise<unknown> {
    if (kindOf(method) === "subscription") {
      return Promise.reject(new TypeError(`${method} is a subscription: subscribe over WebSocket (createWsClient)`));
    }
    return withRetry(() => attempt(method, params, call), retryPolicy(method, clientRetry, call), call.signal);
  }

  const own = {
    call: (method: string, params?: unknown, call?: CallOptions) => invoke(method, params, call),
    batch: (build: (b: BatchBuilder) => readonly BatchItem<Method>[], batchOptions?: BatchOptions) =>
      runBatch(core, build, batchOptions),
  };
  return new Proxy(own, {
    get(target, prop) {
      if (typeof prop === "string" && Object.hasOwn(target, prop)) return target[prop as keyof typeof own];
      return typeof prop === "string" && prop !== "then"
        ? pathProxy([prop], (method, args) => invoke(method, args[0], args[1] as CallOptions | undefined))
        : undefined;
    },
  }) as unknown as Client;
}

/** Queries are retried; mutations only on request, since a lost answer may hide a done deed. */
function retryPolicy(method: string, client: Partial<RetryOptions> | false | undefined, call: CallOptions): RetryOptions | false {
  const kind = kindOf(method);
  if (call.retry === false || (kind !== "query" && !call.retryMutation)) return false;
  if (client === false && call.retry === undefined) return false;
  return { ...defaultRetry, ...(client || {}), ...(call.retry ?? {}) };
}

/** The procedure's kind from the generated table; `undefined` for an unknown method. */
export function kindOf(method: string): string | undefined {
  return (procedures as Record<string, { kind: string } | undefined>)[method]?.kind;
}

function lowerCase(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}
