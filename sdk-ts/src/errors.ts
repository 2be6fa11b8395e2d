// Every error the SDK rejects a call with. Server errors are `RpcError`s, one
// subclass per category so `instanceof` narrows; failures before an answer
// arrives (network, timeout, abort) have classes of their own.

import { errorCodes, procedures } from "./generated/procedures.js";
import type { Method, ReasonOf } from "./types.js";

export type ErrorCategory = keyof typeof errorCodes;

/** `data` of a JSON-RPC error from Trellis: `reason` and `requestId`, plus reason-specific fields. */
export interface ErrorData {
  reason?: string;
  requestId?: string;
  /** How long to wait before trying again (TOO_MANY_REQUESTS, UNAVAILABLE). */
  retryAfterMs?: number;
  /** The invalid fields of a VALIDATION error. */
  fields?: { path: string; message: string }[];
  [key: string]: unknown;
}

/** The JSON-RPC error object as it travels. */
export interface WireError {
  code: number;
  message: string;
  data?: ErrorData;
}

/** Base class of every error the SDK produces. */
export class TrellisError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    // Subclasses get their own name without repeating it in each constructor.
    this.name = new.target.name;
  }
}

/**
 * An error answered by the server. `R` is the reason union of the procedure
 * that failed; use `isRpcError(err, method)` to get it narrowed.
 */
export class RpcError<R extends string = string> extends TrellisError {
  readonly code: number;
  /** The category of `code`; "UNKNOWN" for a code this SDK does not know. */
  readonly category: ErrorCategory | "UNKNOWN";
  /** The precise, stable cause (`data.reason`). */
  readonly reason: R;
  readonly data: ErrorData;
  /** The id that names the call in the server's logs. */
  readonly requestId: string | undefined;
  /** The method of the failed call, when known. */
  readonly method: string | undefined;

  constructor(wire: WireError, method?: string) {
    super(wire.message);
    this.code = wire.code;
    this.category = categoryOf(wire.code);
    this.data = wire.data ?? {};
    // A server always sends a reason; the category is the best stand-in if not.
    this.reason = (this.data.reason ?? this.category) as R;
    this.requestId = typeof this.data.requestId === "string" ? this.data.requestId : undefined;
    this.method = method;
  }
}

export class ParseError<R extends string = string> extends RpcError<R> {}
export class InvalidRequestError<R extends string = string> extends RpcError<R> {}
export class MethodNotFoundError<R extends string = string> extends RpcError<R> {}
export class InvalidParamsError<R extends string = string> extends RpcError<R> {}
export class InternalError<R extends string = string> extends RpcError<R> {}
export class UnauthenticatedError<R extends string = string> extends RpcError<R> {}
export class ForbiddenError<R extends string = string> extends RpcError<R> {}
export class NotFoundError<R extends string = string> extends RpcError<R> {}
export class ConflictError<R extends string = string> extends RpcError<R> {}
export class PreconditionFailedError<R extends string = string> extends RpcError<R> {}
export class LockedError<R extends string = string> extends RpcError<R> {}
export class TooManyRequestsError<R extends string = string> extends RpcError<R> {}
export class UnavailableError<R extends string = string> extends RpcError<R> {}

// The `satisfies` makes a new category in the generated codes a compile error here.
const classes = {
  PARSE_ERROR: ParseError,
  INVALID_REQUEST: InvalidRequestError,
  METHOD_NOT_FOUND: MethodNotFoundError,
  INVALID_PARAMS: InvalidParamsError,
  INTERNAL: InternalError,
  UNAUTHENTICATED: UnauthenticatedError,
  FORBIDDEN: ForbiddenError,
  NOT_FOUND: NotFoundError,
  CONFLICT: ConflictError,
  PRECONDITION_FAILED: PreconditionFailedError,
  LOCKED: LockedError,
  TOO_MANY_REQUESTS: TooManyRequestsError,
  UNAVAILABLE: UnavailableError,
} satisfies Record<ErrorCategory, typeof RpcError>;

const categoryByCode = new Map<number, ErrorCategory>(
  Object.entries(errorCodes).map(([name, code]) => [code, name as ErrorCategory]),
);

function categoryOf(code: number): ErrorCategory | "UNKNOWN" {
  return categoryByCode.get(code) ?? "UNKNOWN";
}

/** The one place a wire error becomes an `RpcError` of the right subclass. */
export function createRpcError(wire: WireError, method?: string): RpcError {
  const category = categoryOf(wire.code);
  const Class = category === "UNKNOWN" ? RpcError : classes[category];
  return new Class(wire, method);
}

/** The network failed or the server answered something that is not JSON-RPC (e.g. HTTP 503). */
export class ConnectionError extends TrellisError {
  /** HTTP status, when a response arrived. */
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.status = options?.status;
  }
}

/** The call got no answer within its `timeoutMs`. */
export class TimeoutError extends TrellisError {}

/** The caller aborted the call through its `signal`. */
export class AbortError extends TrellisError {}

/** The server's answer broke the protocol (no answer for the call, malformed JSON-RPC). */
export class ProtocolError extends TrellisError {}

/** The call alone is larger than `maxBytes`, so no request could carry it. */
export class RequestTooLargeError extends TrellisError {}

/** The error `method` can reject with, reason narrowed to that procedure's reasons. */
export type ProcedureError<M extends Method> = RpcError<ReasonOf<M>>;

/**
 * True when `err` is a server error; with `method`, only when it came from a
 * call of `method` and its reason is one that procedure declares, so the
 * narrowed `reason` union is exact and a `switch` over it can be exhaustive.
 */
export function isRpcError(err: unknown): err is RpcError;
export function isRpcError<M extends Method>(err: unknown, method: M): err is ProcedureError<M>;
export function isRpcError(err: unknown, method?: string): boolean {
  if (!(err instanceof RpcError)) return false;
  if (method === undefined) return true;
  const info = (procedures as Record<string, { reasons: readonly string[] }>)[method];
  return err.method === method && info !== undefined && info.reasons.includes(err.reason);
}

/** Whether an error may go away by itself, so a safe call can be sent again. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TimeoutError) return true;
  if (err instanceof ConnectionError) return err.status === undefined || err.status >= 500 || err.status === 429;
  return err instanceof TooManyRequestsError || err instanceof UnavailableError;
}
