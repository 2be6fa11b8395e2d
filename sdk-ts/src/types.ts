// Type-level views of the generated `Procedures` table shared by the runtime files.

import type { Procedures, procedures } from "./generated/procedures.js";
import type { RetryOptions } from "./retry.js";

export type { Procedures };

/** Every method name, e.g. `"auth.login"`. */
export type Method = keyof Procedures & string;
export type ParamsOf<M extends Method> = Procedures[M]["params"];
export type ResultOf<M extends Method> = Procedures[M]["result"];
export type ReasonOf<M extends Method> = Procedures[M]["reason"];
export type KindOf<M extends Method> = Procedures[M]["kind"];

/** The methods that stream items (`kind: "subscription"`): WebSocket only. */
export type SubscriptionMethod = { [M in Method]: KindOf<M> extends "subscription" ? M : never }[Method];
/** The methods that end a subscription (the table's `unsubscribe`): the SDK calls them for you. */
export type UnsubscribeMethod = {
  [M in SubscriptionMethod]: (typeof procedures)[M] extends { unsubscribe: infer U extends string } ? U : never;
}[SubscriptionMethod];
/** The methods called as plain calls: all but subscriptions and the methods that end them. */
export type CallMethod = Exclude<Method, SubscriptionMethod | UnsubscribeMethod>;
/** The type of each item a subscription delivers. */
export type ItemOf<M extends SubscriptionMethod> = Procedures[M] extends { item: infer I } ? I : never;

/** Per-call options, the last argument of every procedure call. */
export interface CallOptions {
  /** Aborts the call; an aborted call is never retried. */
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this call (each attempt). */
  timeoutMs?: number;
  /** Extra HTTP headers for this call. */
  headers?: Record<string, string>;
  /** Overrides the client's retry policy; `false` disables retries. */
  retry?: Partial<RetryOptions> | false;
  /** Lets a mutation be retried: only when sending it twice is harmless. */
  retryMutation?: boolean;
}

/**
 * A procedure as a function. Params may be left out when the params type has
 * no required field (`{}` is assignable to it).
 */
export type CallFn<M extends Method> = {} extends ParamsOf<M>
  ? (params?: ParamsOf<M>, options?: CallOptions) => Promise<ResultOf<M>>
  : (params: ParamsOf<M>, options?: CallOptions) => Promise<ResultOf<M>>;

type Head<S extends string> = S extends `${infer H}.${string}` ? H : never;
type Leaf<S extends string> = S extends `${string}.${string}` ? never : S;
type Rest<S extends string, H extends string> = S extends `${H}.${infer R}` ? R : never;

/**
 * The methods as a tree: `"auth.login"` becomes `tree.auth.login`. `Names` are
 * the method names below `Prefix`; `Fn` maps a full name to the leaf's type.
 */
export type ProcedureTree<Fn extends { [M in Method]: unknown }, Names extends string = Method, Prefix extends string = ""> = {
  [H in Head<Names>]: ProcedureTree<Fn, Rest<Names, H>, `${Prefix}${H}.`>;
} & {
  [L in Leaf<Names> as `${Prefix}${L}` extends Method ? L : never]: Fn[`${Prefix}${L}` & Method];
};

export type CallFns = { [M in Method]: CallFn<M> };
