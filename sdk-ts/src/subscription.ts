// One subscription kept alive across connections: `ws.notifications.subscribe(...)`.
//
// A `Subscriber` subscribes through the link, hands each item on, and when the
// connection drops or the server ends the subscription with
// SUBSCRIPTION_LAGGED or SHUTTING_DOWN, subscribes again (with backoff) with
// `params[resume.param] = lastItem[resume.item]`: the server then sends what
// came after the last item received, so nothing is lost or repeated.
// SESSION_ENDED and TOKEN_EXPIRED stop it until `setToken()` gives a fresh
// token; any other refusal ends it.

import { RpcError, createRpcError, isTransient, type TrellisError, type WireError } from "./errors.js";
import type { ItemOf, ParamsOf, SubscriptionMethod } from "./types.js";

/** What happens to one subscription on one connection. */
export interface ChannelEvents {
  /** An item (`params.result`). */
  item(result: unknown): void;
  /** The server ended it (`params.error`). */
  end(error: WireError): void;
  /** The connection closed or failed. */
  lost(error: Error): void;
}

/** One subscription on one connection: `close()` forgets it and sends its unsubscribe method. */
export interface Channel {
  close(): void;
}

/** What the connection (`Link` in `ws.ts`) asks of a subscription. */
export interface LinkSubscriber {
  /** The client was closed: end without error. */
  stop(): void;
  /** `setToken()` gave a fresh token: resume if credentials had stopped it. */
  renewed(): void;
}

/** What a subscription asks of the connection it runs on (`Link` in `ws.ts`). */
export interface SubscriptionLink {
  readonly subscribers: Set<LinkSubscriber>;
  readonly reconnect: { minDelayMs: number; maxDelayMs: number };
  subscribe(method: string, params: unknown, unsubscribe: string, events: ChannelEvents): Promise<Channel>;
}

export interface SubscriptionHandlers<T> {
  /** Each item, in order. */
  onData(item: T): void;
  /**
   * The subscription failed. An `RpcError` with reason SESSION_ENDED or
   * TOKEN_EXPIRED means the credentials are gone: the subscription waits, and
   * resumes after the last item once `setToken()` gives a fresh token
   * (unsubscribe to give up). Any other error ends it.
   */
  onError?(error: TrellisError): void;
  /** It ended without error: `unsubscribe()`, or the client's `close()`. */
  onComplete?(): void;
}

/**
 * The iterator form: `for await (const item of ws.notifications.subscribe(params))`.
 * Leaving the loop (`break`, `return`, a throw) unsubscribes; an error of the
 * subscription is thrown by the loop and ends it. Items wait in memory until
 * the loop takes them; a resume starts after the last item received.
 */
export interface Subscription<T> extends AsyncIterableIterator<T> {
  /** Ends the subscription (sends the unsubscribe method); the loop finishes. */
  unsubscribe(): void;
}

/** `subscribe(params, handlers)` returns the function that unsubscribes; `subscribe(params)` the iterator. */
export type SubscribeFn<M extends SubscriptionMethod> = {} extends ParamsOf<M>
  ? {
      (params: ParamsOf<M> | undefined, handlers: SubscriptionHandlers<ItemOf<M>>): () => void;
      (params?: ParamsOf<M>): Subscription<ItemOf<M>>;
    }
  : {
      (params: ParamsOf<M>, handlers: SubscriptionHandlers<ItemOf<M>>): () => void;
      (params: ParamsOf<M>): Subscription<ItemOf<M>>;
    };

/** What a subscription needs to know of its procedure (from the generated table). */
export interface SubscriptionSpec {
  method: string;
  params: unknown;
  unsubscribe: string;
  resume: { param: string; item: string } | undefined;
}

/** Reasons that mean the credentials are gone: wait for `setToken()`. */
const CREDENTIALS_GONE = new Set(["SESSION_ENDED", "TOKEN_EXPIRED"]);
/** Endings after which subscribing again resumes where the subscription was. */
const RESUMABLE = new Set(["SUBSCRIPTION_LAGGED", "SHUTTING_DOWN"]);

type State = "connecting" | "open" | "waiting-for-token" | "ended";

export class Subscriber implements LinkSubscriber {
  #state: State = "connecting";
  #channel: Channel | undefined;
  /** The last item received: where a resume starts. */
  #last: unknown;
  #received = false;
  /** Consecutive failed attempts; they set the backoff. */
  #failures = 0;
  #handlers: SubscriptionHandlers<unknown>;

  constructor(
    private readonly link: SubscriptionLink,
    private readonly spec: SubscriptionSpec,
    handlers: SubscriptionHandlers<unknown> | undefined,
  ) {
    // The iterator form sets its own handlers before the first item can arrive.
    this.#handlers = handlers ?? { onData: () => {} };
    link.subscribers.add(this);
    void this.#run();
  }

  /** The iterator form over this subscription. */
  iterator(): Subscription<unknown> {
    const items: unknown[] = [];
    let failure: TrellisError | undefined;
    let finished = false;
    let waiter: { resolve(r: IteratorResult<unknown>): void; reject(e: unknown): void } | undefined;
    const wake = () => {
      if (!waiter) return;
      const w = waiter;
      if (items.length > 0) {
        waiter = undefined;
        w.resolve({ value: items.shift(), done: false });
      } else if (failure) {
        waiter = undefined;
        const error = failure;
        failure = undefined;
        finished = true;
        w.reject(error);
      } else if (finished) {
        waiter = undefined;
        w.resolve({ value: undefined, done: true });
      }
    };
    this.#handlers = {
      onData: (item) => (items.push(item), wake()),
      // In a loop an error is final: the loop throws it and is over.
      onError: (error) => (this.#end(), (failure = error), wake()),
      onComplete: () => ((finished = true), wake()),
    };
    const iterator: Subscription<unknown> = {
      next: () =>
        new Promise((resolve, reject) => {
          waiter = { resolve, reject };
          wake();
        }),
      return: (value?: unknown) => {
        this.unsubscribe();
        items.length = 0;
        return Promise.resolve({ value, done: true });
      },
      unsubscribe: () => this.unsubscribe(),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  unsubscribe(): void {
    if (this.#state === "ended") return;
    this.#end();
    this.#handlers.onComplete?.();
  }

  stop(): void {
    this.unsubscribe();
  }

  renewed(): void {
    if (this.#state !== "waiting-for-token") return;
    this.#state = "connecting";
    this.#failures = 0;
    void this.#run();
  }

  #end(): void {
    this.#state = "ended";
    this.link.subscribers.delete(this);
    this.#channel?.close();
    this.#channel = undefined;
  }

  /** The params, set to resume after the last item received. */
  #params(): unknown {
    const { params, resume } = this.spec;
    if (!this.#received || !resume) return params;
    return { ...(params as object | undefined), [resume.param]: (this.#last as Record<string, unknown>)[resume.item] };
  }

  async #run(): Promise<void> {
    while (this.#state === "connecting") {
      if (this.#failures > 0) await this.#backoff();
      if (this.#state !== "connecting") return;
      // An end or a loss can come in the same event as the answer, before
      // this function resumes: it is held until the subscription is open.
      let open = false;
      let held: (() => void) | undefined;
      const once = (then: () => void) => (open ? then() : (held = then));
      try {
        const channel = await this.link.subscribe(this.spec.method, this.#params(), this.spec.unsubscribe, {
          item: (item) => this.#item(item),
          end: (error) => once(() => this.#ended(error)),
          lost: () => once(() => this.#again()),
        });
        if (this.#state !== "connecting") return channel.close();
        this.#channel = channel;
        this.#state = "open";
        this.#failures = 0;
        open = true;
        held?.();
        return;
      } catch (error) {
        if (this.#state !== "connecting") return;
        this.#failures++;
        if (error instanceof RpcError && !this.#retryable(error)) return this.#fail(error);
      }
    }
  }

  #item(item: unknown): void {
    if (this.#state === "ended") return;
    this.#last = item;
    this.#received = true;
    this.#handlers.onData(item);
  }

  #ended(wire: WireError): void {
    this.#channel = undefined;
    if (this.#state !== "open") return;
    const error = createRpcError(wire, this.spec.method);
    if (RESUMABLE.has(error.reason)) {
      // SHUTTING_DOWN: the server closes the socket next; wait a little first.
      if (error.reason === "SHUTTING_DOWN") this.#failures = 1;
      return this.#again();
    }
    this.#fail(error);
  }

  /** Subscribes again (the connection was lost, or the server asked for it). */
  #again(): void {
    this.#channel = undefined;
    if (this.#state !== "open") return;
    this.#state = "connecting";
    void this.#run();
  }

  /** Whether a refused subscribe call is worth another try. */
  #retryable(error: RpcError): boolean {
    if (error.reason === "TOO_MANY_SUBSCRIPTIONS") return false;
    return RESUMABLE.has(error.reason) || isTransient(error);
  }

  #fail(error: RpcError): void {
    if (CREDENTIALS_GONE.has(error.reason)) {
      this.#state = "waiting-for-token";
    } else {
      this.#end();
    }
    this.#handlers.onError?.(error);
  }

  /** The link's delays: `minDelayMs` doubling to `maxDelayMs`, ±25 %. */
  #backoff(): Promise<void> {
    const { minDelayMs, maxDelayMs } = this.link.reconnect;
    const delay = Math.min(maxDelayMs, minDelayMs * 2 ** (this.#failures - 1));
    return new Promise((resolve) => setTimeout(resolve, delay * (0.75 + Math.random() * 0.5)));
  }
}
