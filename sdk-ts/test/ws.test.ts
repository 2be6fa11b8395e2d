// createWsClient: against the real server over WebSocket, then with a fake
// socket for what a server will not do on demand (stay silent, answer late).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  AbortError,
  ConnectionError,
  RpcError,
  TimeoutError,
  createClient,
  createWsClient,
  isRpcError,
  type WebSocketCtor,
} from "../dist/index.js";
import { password, randomEmail, startServer, type RunningServer } from "./server.js";

/** The global WebSocket, recording every frame sent. */
function countingWebSocket(): { WebSocket: WebSocketCtor; frames: string[] } {
  const frames: string[] = [];
  class Counting extends WebSocket {
    override send(data: string) {
      frames.push(data);
      super.send(data);
    }
  }
  return { WebSocket: Counting, frames };
}

describe("WebSocket against the server", () => {
  let server: RunningServer;
  let wsUrl: string;
  before(async () => {
    server = await startServer();
    wsUrl = server.url.replace(/^http/, "ws");
  });
  after(() => server?.stop());

  it("health.check, and an anonymous auth.me refused with CREDENTIALS_MISSING", async () => {
    const client = createWsClient({ url: wsUrl });
    try {
      assert.equal((await client.health.check()).status, "ok");
      const missing = await client.auth.me().catch((e: unknown) => e);
      assert.ok(missing instanceof RpcError, String(missing));
      assert.ok(isRpcError(missing, "auth.me"));
      assert.equal(missing.reason, "CREDENTIALS_MISSING");
    } finally {
      client.close();
    }
  });

  it("auth.me with ?access_token= from a login over HTTP", async () => {
    const http = createClient({ url: server.url });
    const email = randomEmail();
    const { userId } = await http.auth.register({ email, password });
    const { accessToken } = await http.auth.login({ email, password });

    let token: string | undefined = accessToken;
    // An http:// URL works too; the token function is asked at each connect.
    const client = createWsClient({ url: server.url, accessToken: () => token });
    try {
      const me = await client.auth.me();
      assert.equal(me.user.id, userId);
      assert.equal(me.user.email, email);

      // Credentials live as long as the connection: a new token needs a new one.
      token = "not.a.jwt";
      assert.equal((await client.auth.me()).user.id, userId);
      client.close();
      const invalid = await client.auth.me().catch((e: unknown) => e);
      assert.ok(isRpcError(invalid, "auth.me") && invalid.reason === "TOKEN_INVALID", String(invalid));
    } finally {
      client.close();
    }
  });

  it("?api_key= is checked too", async () => {
    const client = createWsClient({ url: wsUrl, apiKey: "trl_not_a_key" });
    try {
      const refused = await client.auth.me().catch((e: unknown) => e);
      assert.ok(isRpcError(refused, "auth.me") && refused.reason === "API_KEY_INVALID", String(refused));
    } finally {
      client.close();
    }
  });

  it("an explicit batch leaves as one frame; concurrent calls each as their own", async () => {
    const counter = countingWebSocket();
    const client = createWsClient({ url: wsUrl, WebSocket: counter.WebSocket });
    try {
      const [me, health, discover] = await client.batch((b) => [b.auth.me(), b.health.check(), b.rpc.discover()]);
      assert.equal(counter.frames.length, 1);
      assert.equal(JSON.parse(counter.frames[0]!).length, 3);
      assert.ok(!me.ok && isRpcError(me.error, "auth.me") && me.error.reason === "CREDENTIALS_MISSING");
      assert.ok(health.ok && health.value.status === "ok");
      assert.ok(discover.ok);

      const [a, b] = await Promise.all([client.health.check(), client.rpc.discover()]);
      assert.equal(a.status, "ok");
      assert.ok(b);
      assert.equal(counter.frames.length, 3, "one connection, one frame per call");
    } finally {
      client.close();
    }
  });
});

describe("WebSocket tokens renewed on an open connection", () => {
  let server: RunningServer;
  before(async () => {
    // Short-lived access tokens: the server closes a connection 5 s (its
    // leeway) after its token expires, unless it got a fresh one.
    server = await startServer({ env: { TRELLIS_ACCESS_TOKEN_TTL_SECS: "2" } });
  });
  after(() => server?.stop());

  const expOf = (jwt: string): number =>
    (JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as { exp: number }).exp;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("setToken() keeps the connection past the first token's expiry; another user's token is refused", async () => {
    const http = createClient({ url: server.url });
    const email = randomEmail();
    await http.auth.register({ email, password });
    const first = await http.auth.login({ email, password });
    let sockets = 0;
    class Counting extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets++;
      }
    }
    const client = createWsClient({ url: server.url, accessToken: first.accessToken, WebSocket: Counting });
    try {
      assert.equal((await client.auth.me()).user.email, email);

      await sleep(2_100);
      const second = await http.auth.refresh({ refreshToken: first.refreshToken });
      assert.ok(expOf(second.accessToken) > expOf(first.accessToken));
      const renewed = await client.setToken(second.accessToken);
      assert.equal(renewed?.expiresAt, new Date(expOf(second.accessToken) * 1000).toISOString().replace(".000Z", "Z"));

      const other = randomEmail();
      await http.auth.register({ email: other, password });
      const stranger = await http.auth.login({ email: other, password });
      const refused = await client.setToken(stranger.accessToken).catch((e: unknown) => e);
      assert.ok(refused instanceof RpcError && refused.reason === "TOKEN_INVALID", String(refused));

      // Past the moment the first token would have had the connection closed.
      await sleep(Math.max(0, (expOf(first.accessToken) + 6) * 1000 - Date.now()) + 500);
      assert.equal((await client.auth.me()).user.email, email);
      assert.equal(sockets, 1, "the same connection throughout");
    } finally {
      client.close();
    }
  });
});

describe("WebSocket when the server goes away", () => {
  it("calls fail with ConnectionError while it is down; the next call after its return reconnects", async () => {
    let server = await startServer();
    const client = createWsClient({ url: server.url, reconnect: { retries: 0, minDelayMs: 20, maxDelayMs: 50 } });
    try {
      assert.equal((await client.health.check()).status, "ok");
      await server.stop();
      const down = await client.health.check().catch((e: unknown) => e);
      assert.ok(down instanceof ConnectionError, String(down));
      const still = await client.health.check().catch((e: unknown) => e);
      assert.ok(still instanceof ConnectionError, String(still));

      server = await startServer({ port: server.port });
      assert.equal((await client.health.check()).status, "ok");
    } finally {
      client.close();
      await server.stop();
    }
  });
});

/**
 * A socket that opens on the next tick and passes each frame to `answer`,
 * which replies through `reply` (or never).
 */
function fakeWebSocket(answer: (frame: string, reply: (payload: unknown) => void) => void, refuse = 0) {
  const sockets: { url: string; closed: boolean }[] = [];
  class FakeSocket extends EventTarget {
    readonly record: { url: string; closed: boolean };
    constructor(readonly url: string) {
      super();
      this.record = { url, closed: false };
      sockets.push(this.record);
      // The first `refuse` connects fail the way Node 20's WebSocket does: `error`, no `close`.
      setTimeout(() => this.dispatchEvent(new Event(sockets.length <= refuse ? "error" : "open")));
    }
    send(frame: string) {
      answer(frame, (payload) => {
        if (!this.record.closed) this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(payload) }));
      });
    }
    close(code = 1000) {
      if (this.record.closed) return;
      this.record.closed = true;
      setTimeout(() => this.dispatchEvent(Object.assign(new Event("close"), { code, reason: "" })));
    }
  }
  return { WebSocket: FakeSocket as unknown as WebSocketCtor, sockets };
}

describe("WebSocket client runtime", () => {
  it("matches answers by id in any order; a timeout fails only its call", async () => {
    const held: (() => void)[] = [];
    const fake = fakeWebSocket((frame, reply) => {
      const call = JSON.parse(frame) as { id: number; method: string };
      if (call.method === "rpc.discover") return; // never answered
      held.push(() => reply({ jsonrpc: "2.0", id: call.id, result: { status: "ok", n: call.id } }));
      // Answer the two health checks in reverse order.
      if (held.length === 2) for (const send of held.reverse()) send();
    });
    const client = createWsClient({ url: "ws://fake.invalid/rpc", WebSocket: fake.WebSocket, accessToken: "a b&c" });
    const silent = client.rpc.discover(undefined, { timeoutMs: 30 }).catch((e: unknown) => e);
    const [first, second] = await Promise.all([client.health.check(), client.health.check()]);
    assert.notEqual((first as unknown as { n: number }).n, (second as unknown as { n: number }).n);
    assert.ok((await silent) instanceof TimeoutError);
    assert.equal(fake.sockets.length, 1);
    assert.equal(new URL(fake.sockets[0]!.url).searchParams.get("access_token"), "a b&c");
    client.close();
  });

  it("an abort fails its call; close() fails the calls under way with ConnectionError", async () => {
    const fake = fakeWebSocket(() => {});
    const client = createWsClient({ url: "ws://fake.invalid/rpc", WebSocket: fake.WebSocket });
    const controller = new AbortController();
    const aborted = client.health.check(undefined, { signal: controller.signal }).catch((e: unknown) => e);
    const waiting = client.health.check().catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    assert.ok((await aborted) instanceof AbortError);
    client.close();
    const closed = await waiting;
    assert.ok(closed instanceof ConnectionError, String(closed));
    assert.equal(fake.sockets[0]!.closed, true);
  });

  it("a failed connect is tried again with backoff, up to `retries` times", async () => {
    const fake = fakeWebSocket((frame, reply) => reply({ jsonrpc: "2.0", id: JSON.parse(frame).id, result: { status: "ok" } }), 4);
    const client = createWsClient({
      url: "ws://fake.invalid/rpc",
      WebSocket: fake.WebSocket,
      reconnect: { retries: 2, minDelayMs: 5, maxDelayMs: 10 },
    });
    const refused = await client.health.check().catch((e: unknown) => e);
    assert.ok(refused instanceof ConnectionError, String(refused));
    assert.equal(fake.sockets.length, 3, "one attempt and two retries");
    assert.equal((await client.health.check()).status, "ok");
    assert.equal(fake.sockets.length, 5);
    client.close();
  });

  it("without a WebSocket constructor it says so", () => {
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    global.WebSocket = undefined;
    try {
      assert.throws(() => createWsClient({ url: "ws://fake.invalid/rpc" }), /no WebSocket available/);
    } finally {
      global.WebSocket = saved;
    }
  });
});
