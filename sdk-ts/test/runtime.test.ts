// Batching, retry and error edge cases against an in-process fake server.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  AbortError,
  ConnectionError,
  ProtocolError,
  RequestTooLargeError,
  Session,
  TimeoutError,
  TooManyRequestsError,
  UnavailableError,
  createClient,
  createRpcError,
  isRpcError,
  retryDelay,
  defaultRetry,
} from "../dist/index.js";
import { fakeFetch, url } from "./fake.js";

const ok = (call: { method: string; params?: unknown }) => ({ result: { echo: call.params ?? null, method: call.method } });
const health = { status: "ok" };

describe("tick batching", () => {
  it("splits a burst by maxItems", async () => {
    const fake = fakeFetch(() => ({ result: health }));
    const client = createClient({ url, fetch: fake.fetch, batching: { maxItems: 3 } });
    await Promise.all(Array.from({ length: 7 }, () => client.health.check()));
    assert.deepEqual(
      fake.requests.map((r) => (Array.isArray(r.body) ? r.body.length : 1)),
      [3, 3, 1],
    );
  });

  it("splits by maxBytes and fails alone a call too big for any request", async () => {
    const fake = fakeFetch(ok);
    const client = createClient({ url, fetch: fake.fetch, batching: { maxBytes: 200 } });
    const big = client.auth.login({ email: "a@example.com", password: "x".repeat(400) });
    const small = [client.health.check(), client.health.check(), client.health.check()];
    await assert.rejects(big, RequestTooLargeError);
    await Promise.all(small);
    for (const r of fake.requests) assert.ok(JSON.stringify(r.body).length <= 200);
    assert.ok(!JSON.stringify(fake.requests).includes("auth.login"));
  });

  it("fails only the call whose answer is missing", async () => {
    const fake = fakeFetch((call) => (call.method === "auth.me" ? undefined : { result: health }));
    const client = createClient({ url, fetch: fake.fetch });
    const [a, me, b] = await Promise.allSettled([client.health.check(), client.auth.me(), client.health.check()]);
    assert.equal(a.status, "fulfilled");
    assert.equal(b.status, "fulfilled");
    assert.equal(me.status, "rejected");
    assert.ok(me.reason instanceof ProtocolError);
    assert.equal(fake.requests.length, 1);
  });

  it("drops a call aborted before dispatch", async () => {
    const fake = fakeFetch(() => ({ result: health }));
    const client = createClient({ url, fetch: fake.fetch });
    const controller = new AbortController();
    const aborted = client.auth.me({}, { signal: controller.signal });
    const kept = client.health.check();
    controller.abort();
    await assert.rejects(aborted, AbortError);
    await kept;
    assert.equal(fake.requests.length, 1);
    assert.ok(!JSON.stringify(fake.requests[0]!.body).includes("auth.me"));
  });

  it("sends different credentials in different requests", async () => {
    const fake = fakeFetch(() => ({ result: health }));
    const client = createClient({ url, fetch: fake.fetch, apiKey: "key-1" });
    await Promise.all([client.health.check(), client.health.check({}, { headers: { Authorization: "Bearer t" } })]);
    assert.equal(fake.requests.length, 2);
    assert.equal(fake.requests[0]!.headers["x-api-key"], "key-1");
    assert.equal(fake.requests[1]!.headers.authorization, "Bearer t");
  });

  it("times a call out and stops the request nobody waits for", async () => {
    let signal: AbortSignal | undefined;
    // Answers only when aborted, like a server that hangs.
    const fetch = (_input: string, init: RequestInit) =>
      new Promise<Response>((_resolve, reject) => {
        signal = init.signal ?? undefined;
        signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      });
    const client = createClient({ url, fetch, retry: false });
    await assert.rejects(client.health.check({}, { timeoutMs: 50 }), TimeoutError);
    assert.equal(signal?.aborted, true);
  });

  it("maps a whole-request error to every call", async () => {
    const fetch = async () =>
      new Response(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32600, message: "too many", data: { reason: "BATCH_TOO_LARGE" } } }));
    const client = createClient({ url, fetch });
    const results = await Promise.allSettled([client.health.check(), client.health.check()]);
    for (const r of results) assert.equal(r.status === "rejected" && (r.reason as { reason: string }).reason, "BATCH_TOO_LARGE");
  });
});

describe("errors", () => {
  it("builds the subclass of the category and narrows by method", () => {
    const err = createRpcError({ code: -32029, message: "slow down", data: { reason: "RATE_LIMITED", requestId: "r1", retryAfterMs: 20 } }, "auth.me");
    assert.ok(err instanceof TooManyRequestsError);
    assert.equal(err.category, "TOO_MANY_REQUESTS");
    assert.equal(err.requestId, "r1");
    assert.ok(isRpcError(err, "auth.me"));
    assert.ok(!isRpcError(err, "auth.login"), "came from another method");
    const foreign = createRpcError({ code: -32600, message: "x", data: { reason: "BATCH_TOO_LARGE" } }, "auth.me");
    assert.ok(!isRpcError(foreign, "auth.me"), "a reason auth.me does not declare");
  });
});

describe("retry", () => {
  it("backs off exponentially with jitter, capped", () => {
    const transient = new ConnectionError("down");
    const mid = () => 0.5;
    assert.equal(retryDelay(transient, 0, defaultRetry, mid), 500);
    assert.equal(retryDelay(transient, 1, defaultRetry, mid), 1000);
    assert.equal(retryDelay(transient, 6, { ...defaultRetry, retries: 10 }, mid), 8000);
    assert.equal(retryDelay(transient, 2, defaultRetry), undefined, "out of retries");
    const low = retryDelay(transient, 0, defaultRetry, () => 0)!;
    const high = retryDelay(transient, 0, defaultRetry, () => 1)!;
    assert.ok(low >= 375 && high <= 625 && low < high);
  });

  it("honours retryAfterMs within bounds", async () => {
    const hinted = (ms: number) => createRpcError({ code: -32050, message: "busy", data: { reason: "DATABASE_UNAVAILABLE", retryAfterMs: ms } });
    assert.ok(hinted(5) instanceof UnavailableError);
    assert.equal(retryDelay(hinted(1234), 0, defaultRetry), 1234);
    assert.equal(retryDelay(hinted(60_000), 0, defaultRetry), undefined, "longer than maxDelayMs: give up now");

    const fake = fakeFetch((_call, attempt) =>
      attempt === 0 ? { error: { code: -32029, message: "slow", data: { reason: "RATE_LIMITED", retryAfterMs: 60 } } } : { result: health },
    );
    const client = createClient({ url, fetch: fake.fetch });
    const started = Date.now();
    assert.deepEqual(await client.health.check(), health);
    assert.ok(Date.now() - started >= 55);
    assert.equal(fake.requests.length, 2);
  });

  it("does not retry a validation error", async () => {
    const fake = fakeFetch(() => ({ error: { code: -32602, message: "bad", data: { reason: "VALIDATION" } } }));
    const client = createClient({ url, fetch: fake.fetch });
    await assert.rejects(client.health.check());
    assert.equal(fake.requests.length, 1);
  });

  it("never retries after an abort", async () => {
    const fake = fakeFetch(() => ({ error: { code: -32050, message: "busy", data: { reason: "SHUTTING_DOWN" } } }));
    const client = createClient({ url, fetch: fake.fetch, retry: { baseDelayMs: 200 } });
    const controller = new AbortController();
    const call = client.health.check({}, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(call, AbortError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(fake.requests.length, 1);
  });
});

describe("session", () => {
  const tokens = (n: number) => ({ accessToken: `access-${n}`, refreshToken: `refresh-${n}`, tokenType: "Bearer", expiresIn: 1, user: { id: "u" } });
  const expired = { error: { code: -32001, message: "expired", data: { reason: "TOKEN_EXPIRED" } } };

  it("refreshes once and resends an explicit batch's refused calls", async () => {
    const seen: (string | undefined)[] = [];
    const fake = fakeFetch((call) => (call.method === "auth.refresh" ? { result: tokens(2) } : { result: health }));
    // Wrap to answer by the bearer sent: the old token is expired.
    const fetch = async (input: string, init: RequestInit) => {
      const auth = (init.headers as Record<string, string>).authorization;
      seen.push(auth);
      if (auth === "Bearer access-1") {
        const calls = JSON.parse(String(init.body)) as { id: number }[];
        return new Response(JSON.stringify(calls.map((c) => ({ jsonrpc: "2.0", id: c.id, ...expired }))));
      }
      return fake.fetch(input, init);
    };
    const session = new Session({ tokens: tokens(1) as never });
    const client = createClient({ url, fetch, session });
    const [a, b] = await client.batch((q) => [q.auth.me(), q.health.check()]);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(seen, ["Bearer access-1", undefined, "Bearer access-2"]);
    assert.equal(session.tokens?.accessToken, "access-2");
  });

  it("keeps the tokens when the refresh fails for the network", async () => {
    const events: unknown[] = [];
    const fetch = async (_input: string, init: RequestInit) => {
      if (String(init.body).includes("auth.refresh")) throw new TypeError("fetch failed");
      const call = JSON.parse(String(init.body)) as { id: number };
      return new Response(JSON.stringify({ jsonrpc: "2.0", id: call.id, ...expired }));
    };
    const session = new Session({ tokens: tokens(1) as never, onLogout: (e) => events.push(e) });
    const client = createClient({ url, fetch, session, retry: false });
    await assert.rejects(client.auth.me(), (err: unknown) => isRpcError(err, "auth.me") && err.reason === "TOKEN_EXPIRED");
    assert.equal(session.tokens?.accessToken, "access-1");
    assert.deepEqual(events, []);
  });
});
