// Tick batching: calls made in the same tick leave as one JSON-RPC batch
// (split by item count and byte size), and each answer is matched back to its
// call by `id`. Every call settles on its own: a missing answer, a timeout or
// an abort fails that call only.

import {
  AbortError,
  ProtocolError,
  RequestTooLargeError,
  TimeoutError,
  TrellisError,
  createRpcError,
  type WireError,
} from "./errors.js";
import { postJson, type FetchFn } from "./transport.js";

export interface BatchingOptions {
  /** Most calls in one HTTP request (the server's default limit is 100). */
  maxItems?: number;
  /** Largest request body in bytes (the server's default limit is 1 MiB). */
  maxBytes?: number;
  /** How long to collect calls before sending; 0 means "the rest of this tick". */
  windowMs?: number;
}

export const defaultBatching: Required<BatchingOptions> = { maxItems: 50, maxBytes: 1_048_576, windowMs: 0 };

export interface OutgoingCall {
  method: string;
  params: unknown;
  headers: Record<string, string>;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

interface Pending {
  id: number;
  method: string;
  body: string;
  bytes: number;
  headers: Record<string, string>;
  groupKey: string;
  settled: boolean;
  flight?: Flight;
  settle(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void;
}

interface Flight {
  controller: AbortController;
  unsettled: number;
}

interface WireResponse {
  id?: unknown;
  result?: unknown;
  error?: WireError;
}

const encoder = new TextEncoder();

export class Dispatcher {
  private nextId = 1;
  private queue: Pending[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly limits: Required<BatchingOptions>;

  constructor(
    private readonly url: string,
    private readonly fetchFn: FetchFn,
    /** `false`: every call is its own request (explicit batches still group). */
    private readonly batching: BatchingOptions | false,
  ) {
    this.limits = { ...defaultBatching, ...(batching || {}) };
  }

  /** Queues a call for the next flush; resolves with its `result`. */
  call(call: OutgoingCall): Promise<unknown> {
    const { pending, promise } = this.prepare(call);
    if (pending) {
      if (this.batching === false) {
        this.dispatch([pending]);
      } else {
        this.queue.push(pending);
        this.flushTimer ??= setTimeout(() => this.flush(), this.limits.windowMs);
      }
    }
    return promise;
  }

  /** Sends these calls now, together (split only where the limits force it). */
  send(calls: OutgoingCall[]): Promise<unknown>[] {
    const prepared = calls.map((c) => this.prepare(c));
    this.dispatch(prepared.flatMap((p) => (p.pending ? [p.pending] : [])));
    return prepared.map((p) => p.promise);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const queued = this.queue;
    this.queue = [];
    this.dispatch(queued);
  }

  /** Builds the pending call, with its timeout and abort wiring; `pending` is absent when it already failed. */
  private prepare(call: OutgoingCall): { pending?: Pending; promise: Promise<unknown> } {
    let resolve!: (value: unknown) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    if (call.signal?.aborted) {
      reject(new AbortError("the call was aborted", { cause: call.signal.reason }));
      return { promise };
    }
    const id = this.nextId++;
    let body: string;
    try {
      const request: Record<string, unknown> = { jsonrpc: "2.0", method: call.method, id };
      // Absent params are left out, which the server reads as "no params".
      if (call.params !== undefined) request.params = call.params;
      body = JSON.stringify(request);
    } catch (cause) {
      reject(new TrellisError(`could not encode the params of ${call.method}`, { cause }));
      return { promise };
    }

    const onAbort = () => pending.settle({ ok: false, error: new AbortError("the call was aborted", { cause: call.signal?.reason }) });
    const timer =
      call.timeoutMs !== undefined && Number.isFinite(call.timeoutMs)
        ? setTimeout(
            () => pending.settle({ ok: false, error: new TimeoutError(`${call.method}: no answer within ${call.timeoutMs} ms`) }),
            call.timeoutMs,
          )
        : undefined;
    const pending: Pending = {
      id,
      method: call.method,
      body,
      bytes: encoder.encode(body).length,
      headers: call.headers,
      groupKey: headerKey(call.headers),
      settled: false,
      settle: (outcome) => {
        if (pending.settled) return;
        pending.settled = true;
        clearTimeout(timer);
        call.signal?.removeEventListener("abort", onAbort);
        if (outcome.ok) resolve(outcome.value);
        else reject(outcome.error);
        // Once no call waits for a request any more, stop it.
        const flight = pending.flight;
        if (flight && --flight.unsettled === 0) flight.controller.abort();
      },
    };
    call.signal?.addEventListener("abort", onAbort, { once: true });
    return { pending, promise };
  }

  private dispatch(calls: Pending[]): void {
    // Calls aborted (or timed out) while queued are dropped, never sent.
    const live = calls.filter((c) => !c.settled);
    // Calls with different headers (credentials) cannot share a request.
    const groups = new Map<string, Pending[]>();
    for (const c of live) {
      const group = groups.get(c.groupKey);
      if (group) group.push(c);
      else groups.set(c.groupKey, [c]);
    }
    for (const group of groups.values()) {
      for (const chunk of this.split(group)) this.fly(chunk);
    }
  }

  /** Packs calls into requests within `maxItems` and `maxBytes` (counting the `[`, `,` and `]`). */
  private split(calls: Pending[]): Pending[][] {
    const { maxItems, maxBytes } = this.limits;
    const chunks: Pending[][] = [];
    let chunk: Pending[] = [];
    let bytes = 2;
    for (const c of calls) {
      if (c.bytes > maxBytes) {
        c.settle({ ok: false, error: new RequestTooLargeError(`${c.method}: the call is ${c.bytes} bytes, more than maxBytes (${maxBytes})`) });
        continue;
      }
      const added = c.bytes + (chunk.length > 0 ? 1 : 0);
      if (chunk.length > 0 && (chunk.length >= maxItems || bytes + added > maxBytes)) {
        chunks.push(chunk);
        chunk = [];
        bytes = 2;
      }
      bytes += c.bytes + (chunk.length > 0 ? 1 : 0);
      chunk.push(c);
    }
    if (chunk.length > 0) chunks.push(chunk);
    return chunks;
  }

  private fly(chunk: Pending[]): void {
    const flight: Flight = { controller: new AbortController(), unsettled: chunk.length };
    for (const c of chunk) c.flight = flight;
    // A lone call goes as a plain request: it may be a byte over the limit for a batch.
    const body = chunk.length === 1 ? chunk[0]!.body : `[${chunk.map((c) => c.body).join(",")}]`;
    postJson(this.url, body, { fetch: this.fetchFn, headers: chunk[0]!.headers, signal: flight.controller.signal }).then(
      (answer) => deliver(chunk, answer),
      (error: unknown) => {
        for (const c of chunk) c.settle({ ok: false, error });
      },
    );
  }
}

function deliver(chunk: Pending[], answer: unknown): void {
  const responses = Array.isArray(answer) ? answer : [answer];
  const byId = new Map<unknown, WireResponse>();
  for (const r of responses) {
    if (r !== null && typeof r === "object") byId.set((r as WireResponse).id, r as WireResponse);
  }
  // An error with a null id answers the whole request (batch too large, body too large, ...).
  const whole = !Array.isArray(answer) ? byId.get(null) : undefined;
  for (const c of chunk) {
    const r = byId.get(c.id) ?? whole;
    if (r === undefined) {
      c.settle({ ok: false, error: new ProtocolError(`${c.method}: the server sent no answer for call id ${c.id}`) });
    } else if (r.error !== undefined) {
      c.settle({ ok: false, error: createRpcError(r.error, c.method) });
    } else if ("result" in r) {
      c.settle({ ok: true, value: r.result });
    } else {
      c.settle({ ok: false, error: new ProtocolError(`${c.method}: the answer has neither result nor error`) });
    }
  }
}

function headerKey(headers: Record<string, string>): string {
  return JSON.stringify(Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
