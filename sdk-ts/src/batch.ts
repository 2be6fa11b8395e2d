// Explicit batches: `client.batch(b => [b.auth.me(), b.health.check()])`
// sends the calls as one request and returns a typed tuple of settled
// results. One attempt (no retries): each item's failure is in its result.

import type { Core } from "./client.js";
import { pathProxy } from "./proxy.js";
import type { TrellisError } from "./errors.js";
import type { CallMethod, Method, ParamsOf, ProcedureTree, ResultOf } from "./types.js";

declare const resultType: unique symbol;

/** A call described, not yet sent. */
export interface BatchItem<M extends Method> {
  readonly method: M;
  readonly params: ParamsOf<M> | undefined;
  /** Carries the result type only; never set. */
  readonly [resultType]?: ResultOf<M>;
}

export type BatchFn<M extends Method> = {} extends ParamsOf<M>
  ? (params?: ParamsOf<M>) => BatchItem<M>
  : (params: ParamsOf<M>) => BatchItem<M>;

/** Plain calls only: a subscription cannot be part of a batch. */
export type BatchBuilder = ProcedureTree<{ [M in Method]: BatchFn<M> }, CallMethod>;

/**
 * The outcome of one call. A server error is an `RpcError`; narrow its reason
 * with `isRpcError(error, method)`.
 */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: TrellisError };

export type SettledTuple<T extends readonly BatchItem<Method>[]> = {
  -readonly [K in keyof T]: T[K] extends BatchItem<infer M> ? Settled<ResultOf<M>> : never;
};

export interface BatchOptions {
  signal?: AbortSignal;
  /** Time the request may take; the client's `timeoutMs` by default. */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export async function runBatch<T extends readonly BatchItem<Method>[]>(
  core: Core,
  build: (b: BatchBuilder) => T,
  options: BatchOptions = {},
): Promise<SettledTuple<T>> {
  const builder = pathProxy([], (method, args) => ({ method, params: args[0] })) as BatchBuilder;
  const items = build(builder) as readonly BatchItem<Method>[];

  const sendAll = async (indexes: number[]) => {
    const headers = await Promise.all(indexes.map((i) => core.headersFor(items[i]!.method, options.headers)));
    const calls = indexes.map((i, n) => ({
      method: items[i]!.method,
      params: items[i]!.params,
      headers: headers[n]!,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? core.timeoutMs,
    }));
    const outcomes = await Promise.allSettled(core.dispatcher.send(calls));
    return outcomes.map((outcome, n) => ({ index: indexes[n]!, outcome, headers: headers[n]! }));
  };

  const results: Settled<unknown>[] = new Array(items.length);
  const record = (index: number, outcome: PromiseSettledResult<unknown>) => {
    if (outcome.status === "fulfilled") {
      core.session?.observe(items[index]!.method, outcome.value);
      results[index] = { ok: true, value: outcome.value };
    } else {
      results[index] = { ok: false, error: outcome.reason as TrellisError };
    }
  };

  const first = await sendAll(items.map((_, i) => i));
  // Calls refused for an expired token go once more, together, after one shared refresh.
  const again: number[] = [];
  for (const { index, outcome, headers } of first) {
    const session = core.session;
    if (outcome.status === "rejected" && session && !options.signal?.aborted && (await session.recover(items[index]!.method, outcome.reason, headers))) {
      again.push(index);
    } else {
      record(index, outcome);
    }
  }
  if (again.length > 0) {
    for (const { index, outcome } of await sendAll(again)) record(index, outcome);
  }
  return results as SettledTuple<T>;
}
