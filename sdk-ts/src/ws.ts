// createWsClient: the same typed client over one WebSocket (`ws://host/rpc`).
// It is `createClient` with a `fetch` that carries each JSON-RPC request as a
// text frame and resolves with the frame(s) answering its ids, so typing,
// errors, per-call timeouts, aborts and explicit batches are the HTTP client's.
// This file only keeps the connection: opened on the first call, shared by all
// calls, reopened (with backoff) by the next call after it closed or failed.
//
// The server closes a connection whose session ends (code 4001) or whose
// access token expires (4002); `setToken()` hands it a fresh token first
// (`rpc.authenticate`), so a long-lived connection survives token refreshes.
//
// Subscriptions (`ws.notifications.subscribe(...)`) ride the same connection:
// `Link.subscribe` sends the subscribe call and routes the items of its
// subscription id; `subscription.ts` keeps a subscription alive across
// reconnects.

import { createClient, kindOf, type Client } from "./client.js";
import { TimeoutError, createRpcError, type WireError } from "./errors.js";
import { procedures } from "./generated/procedures.js";
import { pathProxy } from "./proxy.js";
import {
  Subscriber,
  type Channel,
  type ChannelEvents,
  type LinkSubscriber,
  type SubscribeFn,
  type Subscription,
  type SubscriptionHandlers,
  type SubscriptionLink,
} from "./subscription.js";
import type { CallFns, CallOptions, Method, ProcedureTree, SubscriptionMethod, UnsubscribeMethod } from "./types.js";

/** A `WebSocket` constructor: the global one, or e.g. the `ws` package's. */
export type WebSocketCtor = new (url: string) => WebSocket;

export interface WsReconnectOptions {
  /** Further attempts to open the connection before the waiting calls fail. */
  retries: number;
  /** Delay before the first retry; each consecutive failure doubles it. */
  minDelayMs: number;
  /** Cap of the delay. */
  maxDelayMs: number;
}

export const defaultWsReconnect: WsReconnectOptions = { retries: 2, minDelayMs: 250, maxDelayMs: 5_000 };

export interface WsClientOptions {
  /** `ws://host/rpc` (or `wss://`); `http(s)://` is turned into `ws(s)://`. */
  url: string;
  /** The constructor to use; `globalThis.WebSocket` by default. */
  WebSocket?: WebSocketCtor;
  /** Sent as `?access_token=` when connecting; a function is asked at every (re)connect. */
  accessToken?: string | (() => string | undefined);
  /** Sent as `?api_key=` when connecting. */
  apiKey?: string;
  /** Time each call may take, waiting for the connection included. Default 30 s. */
  timeoutMs?: number;
  /** How hard to try when opening the connection fails. */
  reconnect?: Partial<WsReconnectOptions>;
}

/** The answer to `setToken()` on an open connection. */
export interface WsAuthenticated {
  /** When the token expires (RFC 3339); the server closes the connection then (code 4002) unless it gets a newer one. */
  expiresAt: string;
  /** Seconds until then. */
  expiresIn: number;
}

/** A plain call for each procedure, `subscribe(...)` for each subscription. */
export type WsFns = { [M in Method]: M extends SubscriptionMethod ? SubscribeFn<M> : CallFns[M] };

export type WsClient = ProcedureTree<WsFns, Exclude<Method, UnsubscribeMethod>> &
  Pick<Client, "call" | "batch"> & {
  /**
   * Closes the connection; calls under way fail with `ConnectionError`, the
   * next call connects again. Subscriptions end (`onComplete`).
   */
  close(): void;
  /**
   * Presents a fresh access token (of the same user) on the open connection
   * without reconnecting (`rpc.authenticate`); the connection then lives to
   * that token's expiry. The token is also used for every later connect (it
   * replaces the `accessToken` option). Resolves with the new expiry, or
   * `undefined` when no connection is open (the next one uses the token).
   * Rejects with an `RpcError` (`TOKEN_INVALID`, `TOKEN_EXPIRED`) when the
   * server refuses it; the connection then keeps its previous token.
   * Subscriptions stopped by SESSION_ENDED or TOKEN_EXPIRED resume with it.
   */
  setToken(token: string): Promise<WsAuthenticated | undefined>;
};

export function createWsClient(options: WsClientOptions): WsClient {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (!Ctor) {
    throw new TypeError("no WebSocket available: pass `WebSocket` in the options (Node 20 needs --experimental-websocket)");
  }
  const url = options.url.replace(/^http(s?):/i, "ws$1:");
  const link = new Link(Ctor, url, options, { ...defaultWsReconnect, ...options.reconnect }, options.timeoutMs ?? 30_000);
  const client = createClient({
    url,
    fetch: (_url, init) => link.exchange(String(init.body), init.signal ?? undefined).then((text) => new Response(text)),
    timeoutMs: options.timeoutMs ?? 30_000,
    // A lost connection fails the calls it carried; resending is the caller's choice.
    retry: false,
    // One frame per call; explicit batches still leave as one frame.
    batching: false,
  });
  const own: Record<string, unknown> = {
    call: client.call,
    batch: client.batch,
    close: () => link.close(),
    setToken: (token: string) => link.setToken(token),
  };
  const leaf = (method: string, args: unknown[]) =>
    kindOf(method) === "subscription"
      ? subscribe(link, method, args[0], args[1] as SubscriptionHandlers<unknown> | undefined)
      : client.call(method as never, args[0] as never, args[1] as CallOptions);
  return new Proxy(own, {
    get: (target, prop) => {
      if (typeof prop !== "string" || prop === "then") return undefined;
      return Object.hasOwn(target, prop) ? target[prop] : pathProxy([prop], leaf);
    },
  }) as unknown as WsClient;
}

/** `ws.<namespace>.<subscription>(params, handlers?)`: the callbacks form or the iterator form. */
function subscribe(
  link: Link,
  method: string,
  params: unknown,
  handlers: SubscriptionHandlers<unknown> | undefined,
): Subscription<unknown> | (() => void) {
  const info = (procedures as Record<string, { unsubscribe?: string; resume?: { param: string; item: string } }>)[method];
  if (!info?.unsubscribe) throw new TypeError(`${method} has no unsubscribe method`);
  const subscriber = new Subscriber(link, { method, params, unsubscribe: info.unsubscribe, resume: info.resume }, handlers);
  return handlers ? () => subscriber.unsubscribe() : subscriber.iterator();
}

/** The calls of one frame, waiting for their answers. */
interface Flight {
  waiting: number;
  answers: unknown[];
  batch: boolean;
  done(answer: unknown): void;
  fail(error: unknown): void;
}

interface Connection {
  socket: WebSocket;
  flights: Map<unknown, Flight>;
  /** The open subscriptions of this connection, by the id the server gave them. */
  channels: Map<string, ChannelEvents>;
}

export class Link implements SubscriptionLink {
  #connection: Connection | undefined;
  #opening: Promise<Connection> | undefined;
  /** Consecutive failed attempts to connect; they set the backoff. */
  #failures = 0;
  /** Bumped by `close()`, so that a connection opening for an older epoch is dropped. */
  #epoch = 0;
  /** A token given by `setToken()`; it replaces the `accessToken` option. */
  #token: string | undefined;
  #authentications = 0;
  #requests = 0;
  readonly subscribers = new Set<LinkSubscriber>();

  constructor(
    private readonly Ctor: WebSocketCtor,
    private readonly url: string,
    private readonly credentials: Pick<WsClientOptions, "accessToken" | "apiKey">,
    readonly reconnect: WsReconnectOptions,
    private readonly timeoutMs: number,
  ) {}

  /** Sends one request body and resolves with the JSON text of its answer. */
  async exchange(body: string, signal?: AbortSignal): Promise<string> {
    const request = JSON.parse(body) as { id: unknown } | { id: unknown }[];
    const connection = await abortable(this.#connect(), signal);
    return new Promise<string>((resolve, reject) => {
      const ids = (Array.isArray(request) ? request : [request]).map((r) => r.id);
      const onAbort = () => flight.fail(signal?.reason);
      const forget = () => {
        for (const id of ids) if (connection.flights.get(id) === flight) connection.flights.delete(id);
        signal?.removeEventListener("abort", onAbort);
      };
      const flight: Flight = {
        waiting: ids.length,
        answers: [],
        batch: Array.isArray(request),
        done: (answer) => (forget(), resolve(JSON.stringify(answer))),
        fail: (error) => (forget(), reject(error)),
      };
      for (const id of ids) connection.flights.set(id, flight);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        if (this.#connection !== connection) throw new Error("the connection closed");
        connection.socket.send(body);
      } catch (error) {
        flight.fail(error);
      }
    });
  }

  async setToken(token: string): Promise<WsAuthenticated | undefined> {
    if (!this.#connection) {
      this.#token = token;
      for (const subscriber of this.subscribers) subscriber.renewed();
      return undefined;
    }
    const id = `rpc.authenticate/${++this.#authentications}`;
    const body = JSON.stringify({ jsonrpc: "2.0", method: "rpc.authenticate", params: { accessToken: token }, id });
    const answer = JSON.parse(await this.exchange(body)) as { result?: WsAuthenticated; error?: WireError };
    if (answer.error) throw createRpcError(answer.error, "rpc.authenticate");
    this.#token = token;
    for (const subscriber of this.subscribers) subscriber.renewed();
    return answer.result;
  }

  /**
   * Sends a subscribe call and resolves with its channel. The answer is read
   * in the same event as it arrives, so the subscription id is known before
   * its first item (items always follow the answer). Rejects with an
   * `RpcError` when the server refuses, any other error when there was no
   * answer (no connection, lost, `timeoutMs`).
   */
  async subscribe(method: string, params: unknown, unsubscribe: string, events: ChannelEvents): Promise<Channel> {
    const connection = await this.#connect();
    const id = `${method}/${++this.#requests}`;
    return new Promise<Channel>((resolve, reject) => {
      const timer = setTimeout(() => flight.fail(new TimeoutError(`${method}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      const flight: Flight = {
        waiting: 1,
        answers: [],
        batch: false,
        done: (answer) => {
          clearTimeout(timer);
          const { result, error } = answer as { result?: unknown; error?: WireError };
          if (error) return reject(createRpcError(error, method));
          if (typeof result !== "string") return reject(new Error(`${method} answered no subscription id`));
          connection.channels.set(result, events);
          resolve({
            close: () => {
              if (connection.channels.get(result) !== events) return;
              connection.channels.delete(result);
              if (this.#connection !== connection) return;
              const request = { jsonrpc: "2.0", id: `${unsubscribe}/${++this.#requests}`, method: unsubscribe, params: { subscription: result } };
              // The answer (true/false) matches no flight and is dropped.
              connection.socket.send(JSON.stringify(request));
            },
          });
        },
        fail: (error) => {
          clearTimeout(timer);
          connection.flights.delete(id);
          reject(error);
        },
      };
      connection.flights.set(id, flight);
      try {
        if (this.#connection !== connection) throw new Error("the connection closed");
        connection.socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params: params ?? {} }));
      } catch (error) {
        flight.fail(error);
      }
    });
  }

  close(): void {
    for (const subscriber of [...this.subscribers]) subscriber.stop();
    this.#epoch++;
    this.#failures = 0;
    this.#opening = undefined;
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) {
      connection.socket.close(1000);
      failAll(connection, new Error("the connection was closed by the client"));
    }
  }

  #connect(): Promise<Connection> {
    if (this.#connection) return Promise.resolve(this.#connection);
    if (this.#opening) return this.#opening;
    const opening = this.#open().finally(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
    return (this.#opening = opening);
  }

  async #open(): Promise<Connection> {
    const epoch = this.#epoch;
    const { retries, minDelayMs, maxDelayMs } = this.reconnect;
    for (let attempt = 0; ; attempt++) {
      if (this.#failures > 0) {
        const delay = Math.min(maxDelayMs, minDelayMs * 2 ** (this.#failures - 1));
        await new Promise((resolve) => setTimeout(resolve, delay * (0.75 + Math.random() * 0.5)));
      }
      if (epoch !== this.#epoch) throw new Error("the connection was closed by the client");
      let socket: WebSocket;
      try {
        socket = await openSocket(this.Ctor, this.#connectUrl());
      } catch (error) {
        if (epoch !== this.#epoch) throw error;
        this.#failures++;
        if (attempt >= retries) throw error;
        continue;
      }
      if (epoch !== this.#epoch) {
        socket.close(1000);
        throw new Error("the connection was closed by the client");
      }
      this.#failures = 0;
      return this.#adopt(socket);
    }
  }

  /** The URL with the credentials; never put in error messages. */
  #connectUrl(): string {
    const { accessToken, apiKey } = this.credentials;
    const token = this.#token ?? (typeof accessToken === "function" ? accessToken() : accessToken);
    if (token === undefined && apiKey === undefined) return this.url;
    const withCredentials = new URL(this.url);
    if (token !== undefined) withCredentials.searchParams.set("access_token", token);
    if (apiKey !== undefined) withCredentials.searchParams.set("api_key", apiKey);
    return withCredentials.href;
  }

  #adopt(socket: WebSocket): Connection {
    const connection: Connection = { socket, flights: new Map(), channels: new Map() };
    this.#connection = connection;
    socket.addEventListener("message", (event) => receive(connection, event.data));
    const lost = (error: Error) => {
      if (this.#connection === connection) this.#connection = undefined;
      failAll(connection, error);
      const channels = [...connection.channels.values()];
      connection.channels.clear();
      for (const channel of channels) channel.lost(error);
    };
    socket.addEventListener("close", (event) => lost(new Error(`the connection closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`)));
    socket.addEventListener("error", (event) => {
      lost(new Error(`the connection failed${detail(event)}`));
      socket.close();
    });
    return connection;
  }
}

/** One attempt to connect: resolves once open, rejects when it closes first. */
function openSocket(Ctor: WebSocketCtor, url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new Ctor(url);
    socket.addEventListener("open", () => resolve(socket), { once: true });
    // Node 20's WebSocket sends no `close` after a failed connect, only `error`.
    // (Listening also keeps EventEmitter-based sockets from throwing.)
    socket.addEventListener("error", (event) => reject(new Error(`the connection could not be opened${detail(event)}`)));
    socket.addEventListener("close", (event) => reject(new Error(`the connection could not be opened (code ${event.code})`)));
  });
}

/** Hands each answer of a frame to the flight waiting for its id, each item to its subscription. */
function receive(connection: Connection, data: unknown): void {
  let frame: unknown;
  try {
    frame = typeof data === "string" ? JSON.parse(data) : undefined;
  } catch {
    return;
  }
  for (const answer of Array.isArray(frame) ? frame : [frame]) {
    if (answer === null || typeof answer !== "object") continue;
    if ("method" in answer) {
      deliver(connection, (answer as { params?: unknown }).params);
      continue;
    }
    const id = (answer as { id?: unknown }).id;
    const flight = connection.flights.get(id);
    if (flight) {
      connection.flights.delete(id);
      flight.answers.push(answer);
      if (--flight.waiting === 0) flight.done(flight.batch ? flight.answers : flight.answers[0]);
    } else if (id === null) {
      // An error for a whole request (too large, unparsable): whose is known only if one waits.
      const waiting = new Set(connection.flights.values());
      if (waiting.size === 1) for (const only of waiting) only.done(answer);
    }
  }
}

/** A subscription's message: an item, or its end. Ids this connection does not know are ignored. */
function deliver(connection: Connection, params: unknown): void {
  if (params === null || typeof params !== "object") return;
  const { subscription, result, error } = params as { subscription?: unknown; result?: unknown; error?: WireError };
  const channel = typeof subscription === "string" ? connection.channels.get(subscription) : undefined;
  if (!channel) return;
  if (error !== undefined) {
    connection.channels.delete(subscription as string);
    channel.end(error);
  } else {
    channel.item(result);
  }
}

function detail(event: Event): string {
  const message = (event as { message?: unknown }).message;
  return typeof message === "string" && message ? `: ${message}` : "";
}

function failAll(connection: Connection, error: Error): void {
  for (const flight of new Set(connection.flights.values())) flight.fail(error);
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
