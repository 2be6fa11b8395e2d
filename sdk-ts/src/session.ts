// A signed-in session: keeps the tokens of `auth.login`, sends the access
// token as a bearer header, trades the refresh token for new tokens when the
// access token expires, and tells the application when the session is over.

import { RpcError } from "./errors.js";
import type { Tokens } from "./generated/types.js";

/** What a client needs from whatever supplies its credentials. */
export interface Authenticator {
  /** Headers for a call of `method`; may wait for a refresh under way. */
  headers(method: string): Promise<Record<string, string>>;
  /** After a call failed: resolves true when sending it once more may now succeed. */
  recover(method: string, error: unknown, sentHeaders: Record<string, string>): Promise<boolean>;
  /** Sees every successful result (a session picks up tokens from it). */
  observe(method: string, result: unknown): void;
  /** Gives the authenticator a way to call the server without itself in the loop. */
  attach(call: RawCall): void;
}

/** A single attempt, no retries, no credentials beyond `headers`. */
export type RawCall = (method: string, params: unknown, headers: Record<string, string>) => Promise<unknown>;

export type LogoutReason = "logout" | "refresh-failed";

export interface LogoutEvent {
  reason: LogoutReason;
  /** Why the refresh failed, for `refresh-failed`. */
  error?: unknown;
}

export interface SessionOptions {
  /** Tokens kept from an earlier run, to resume a session. */
  tokens?: Tokens;
  /** Called whenever the tokens change (`undefined` once signed out), e.g. to persist them. */
  onTokens?: (tokens: Tokens | undefined) => void;
  /** Called once when the session ends: logout, or a refresh the server refused. */
  onLogout?: (event: LogoutEvent) => void;
}

// These establish credentials; a stale bearer on them would only be refused.
const credentialMethods = new Set(["auth.login", "auth.register", "auth.refresh"]);

export class Session implements Authenticator {
  #tokens: Tokens | undefined;
  #refreshing: Promise<boolean> | undefined;
  #call: RawCall | undefined;
  #listeners = new Set<(event: LogoutEvent) => void>();
  readonly #onTokens: ((tokens: Tokens | undefined) => void) | undefined;

  constructor(options: SessionOptions = {}) {
    this.#tokens = options.tokens;
    this.#onTokens = options.onTokens;
    if (options.onLogout) this.#listeners.add(options.onLogout);
  }

  get tokens(): Tokens | undefined {
    return this.#tokens;
  }

  get signedIn(): boolean {
    return this.#tokens !== undefined;
  }

  /** Listens for the end of the session; returns the function that stops listening. */
  onLogout(listener: (event: LogoutEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  attach(call: RawCall): void {
    this.#call = call;
  }

  async headers(method: string): Promise<Record<string, string>> {
    if (credentialMethods.has(method)) return {};
    // A call started during a refresh waits for the new token instead of
    // going out with the expired one and failing.
    if (this.#refreshing) await this.#refreshing;
    return this.#tokens ? { authorization: `Bearer ${this.#tokens.accessToken}` } : {};
  }

  async recover(_method: string, error: unknown, sentHeaders: Record<string, string>): Promise<boolean> {
    if (!(error instanceof RpcError) || error.reason !== "TOKEN_EXPIRED" || !this.#tokens) return false;
    // Someone refreshed since this call left: the new token is worth a try.
    if (sentHeaders.authorization !== `Bearer ${this.#tokens.accessToken}`) return true;
    return this.refresh();
  }

  /**
   * Trades the refresh token for new tokens. Concurrent callers share one
   * refresh: a refresh token is single use, so a second one would be TOKEN_REUSED
   * and end the session.
   */
  refresh(): Promise<boolean> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<boolean> {
    const tokens = this.#tokens;
    if (!tokens || !this.#call) return false;
    try {
      this.#setTokens((await this.#call("auth.refresh", { refreshToken: tokens.refreshToken }, {})) as Tokens);
      return true;
    } catch (error) {
      // The server refused the refresh token: this session is over. A network
      // failure is not a refusal; the tokens stay for a later attempt.
      if (error instanceof RpcError) this.#end({ reason: "refresh-failed", error });
      return false;
    }
  }

  observe(method: string, result: unknown): void {
    if (method === "auth.login" || method === "auth.refresh") this.#setTokens(result as Tokens);
    else if (method === "auth.logout") this.#end({ reason: "logout" });
  }

  /** Ends the session on the server (best effort) and here (always). */
  async logout(params: { allSessions?: boolean } = {}): Promise<void> {
    const tokens = this.#tokens;
    try {
      if (tokens && this.#call) await this.#call("auth.logout", params, { authorization: `Bearer ${tokens.accessToken}` });
    } finally {
      this.#end({ reason: "logout" });
    }
  }

  #setTokens(tokens: Tokens): void {
    this.#tokens = tokens;
    this.#onTokens?.(tokens);
  }

  #end(event: LogoutEvent): void {
    if (!this.#tokens) return;
    this.#tokens = undefined;
    this.#onTokens?.(undefined);
    for (const listener of this.#listeners) listener(event);
  }
}
