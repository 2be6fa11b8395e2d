// Sending a call again after a transient failure, with exponential backoff
// and jitter so that many clients do not come back in lockstep.

import { AbortError, RpcError, isTransient } from "./errors.js";

export interface RetryOptions {
  /** Attempts after the first one. */
  retries: number;
  /** Delay before the first retry; each further retry doubles it. */
  baseDelayMs: number;
  /** Cap of the delay, and the longest `retryAfterMs` from the server that is honoured. */
  maxDelayMs: number;
}

export const defaultRetry: RetryOptions = { retries: 2, baseDelayMs: 500, maxDelayMs: 8_000 };

/** The delay before retry number `attempt` (0 for the first retry), or `undefined` to give up. */
export function retryDelay(error: unknown, attempt: number, options: RetryOptions, random: () => number = Math.random): number | undefined {
  if (attempt >= options.retries || !isTransient(error)) return undefined;
  // The server knows best when it will have room again; a wait beyond our cap
  // means the caller is better served by the error now than by a long stall.
  const hinted = error instanceof RpcError ? error.data.retryAfterMs : undefined;
  if (typeof hinted === "number" && Number.isFinite(hinted) && hinted >= 0) {
    return hinted <= options.maxDelayMs ? hinted : undefined;
  }
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
  // ±25 % jitter, still within the cap.
  return Math.min(options.maxDelayMs, exponential * (0.75 + random() * 0.5));
}

/** Runs `attempt` until it succeeds, the error is not transient, retries run out or `signal` aborts. */
export async function withRetry<T>(attempt: () => Promise<T>, options: RetryOptions | false, signal?: AbortSignal): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const delay = options === false || signal?.aborted ? undefined : retryDelay(error, n, options);
      if (delay === undefined) throw error;
      await sleep(delay, signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError("the call was aborted while waiting to retry", { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
