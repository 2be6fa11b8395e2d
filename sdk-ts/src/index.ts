// The public surface of @trellis/sdk.

export { createClient, type Client, type ClientOptions } from "./client.js";
export { createWsClient, defaultWsReconnect, type WebSocketCtor, type WsAuthenticated, type WsClient, type WsClientOptions, type WsFns, type WsReconnectOptions } from "./ws.js";
export type { SubscribeFn, Subscription, SubscriptionHandlers } from "./subscription.js";
export type { BatchBuilder, BatchItem, BatchOptions, Settled, SettledTuple } from "./batch.js";
export type { BatchingOptions } from "./batching.js";
export { defaultRetry, retryDelay, type RetryOptions } from "./retry.js";
export { Session, type Authenticator, type LogoutEvent, type LogoutReason, type SessionOptions } from "./session.js";
export type { FetchFn } from "./transport.js";
export type { CallMethod, CallOptions, ItemOf, Method, ParamsOf, Procedures, ReasonOf, ResultOf, SubscriptionMethod, UnsubscribeMethod } from "./types.js";
export {
  AbortError,
  ConflictError,
  ConnectionError,
  ForbiddenError,
  InternalError,
  InvalidParamsError,
  InvalidRequestError,
  LockedError,
  MethodNotFoundError,
  NotFoundError,
  ParseError,
  PreconditionFailedError,
  ProtocolError,
  RequestTooLargeError,
  RpcError,
  TimeoutError,
  TooManyRequestsError,
  TrellisError,
  UnauthenticatedError,
  UnavailableError,
  createRpcError,
  isRpcError,
  isTransient,
  type ErrorCategory,
  type ErrorData,
  type ProcedureError,
  type WireError,
} from "./errors.js";
export { errorCodes, procedures, reasonCategories } from "./generated/procedures.js";
export type * from "./generated/types.js";
