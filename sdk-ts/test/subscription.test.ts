// Subscriptions against a fake socket, for what a server will not do on
// demand: drop a connection between two items, end a subscription with a
// given reason, send items of a subscription nobody made.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RpcError, createWsClient, type Notification, type WebSocketCtor } from "../dist/index.js";

interface Call {
  id: string;
  method: string;
  params: Record<string, unknown>;
}

/** A fake server side: sees every call, can push messages and drop sockets. */
function fakeServer(onCall: (call: Call, socket: FakeSocketHandle) => void) {
  const sockets: FakeSocketHandle[] = [];
  class FakeSocket extends EventTarget {
    readonly handle: FakeSocketHandle;
    constructor(readonly url: string) {
      super();
      const socket = this;
      this.handle = {
        url,
        closed: false,
        push: (payload) => {
          if (!socket.handle.closed) socket.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(payload) }));
        },
        drop: (code = 1006) => socket.close(code),
      };
      sockets.push(this.handle);
      setTimeout(() => this.dispatchEvent(new Event("open")));
    }
    send(frame: string) {
      if (this.handle.closed) throw new Error("closed");
      const call = JSON.parse(frame) as Call;
      setTimeout(() => onCall(call, this.handle));
    }
    close(code = 1000) {
      if (this.handle.closed) return;
      this.handle.closed = true;
      setTimeout(() => this.dispatchEvent(Object.assign(new Event("close"), { code, reason: "" })));
    }
  }
  return { WebSocket: FakeSocket as unknown as WebSocketCtor, sockets };
}

interface FakeSocketHandle {
  url: string;
  closed: boolean;
  push(payload: unknown): void;
  drop(code?: number): void;
}

const item = (n: number) => ({ id: `n${n}`, type: "apiKey.created", title: `#${n}`, body: "", data: {}, createdAt: "2026-12-01T00:00:00Z" });
const notify = (subscription: string, n: number) => ({ jsonrpc: "2.0", method: "notifications.subscribe", params: { subscription, result: item(n) } });
const end = (subscription: string, reason: string, code = -32050) => ({
  jsonrpc: "2.0",
  method: "notifications.subscribe",
  params: { subscription, error: { code, message: reason.toLowerCase(), data: { reason, requestId: "r1" } } },
});
const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
};
const fast = { retries: 0, minDelayMs: 1, maxDelayMs: 5 };

describe("subscriptions (fake socket)", () => {
  it("resumes after the last item once the connection drops; items of unknown ids are ignored", async () => {
    const subscribes: Call[] = [];
    let next = 1;
    const fake = fakeServer((call, socket) => {
      if (call.method !== "notifications.subscribe") return;
      subscribes.push(call);
      const id = `sub${subscribes.length}`;
      socket.push({ jsonrpc: "2.0", id: call.id, result: id });
      socket.push(notify("someone-else", 999));
      // Three items, then the connection drops (first time only).
      for (let i = 0; i < 3; i++) socket.push(notify(id, next++));
      if (subscribes.length === 1) socket.drop();
    });
    const ws = createWsClient({ url: "ws://fake.invalid/rpc", WebSocket: fake.WebSocket, reconnect: fast });
    const seen: string[] = [];
    const unsubscribe = ws.notifications.subscribe({}, { onData: (n) => seen.push(n.id) });
    await until(() => seen.length === 6, "six items");
    assert.deepEqual(seen, ["n1", "n2", "n3", "n4", "n5", "n6"]);
    assert.equal(fake.sockets.length, 2);
    assert.deepEqual(subscribes[0]!.params, {});
    assert.deepEqual(subscribes[1]!.params, { after: "n3" });
    unsubscribe();
    ws.close();
  });

  it("SUBSCRIPTION_LAGGED subscribes again on the same connection; unsubscribe sends the unsubscribe method", async () => {
    const calls: Call[] = [];
    const fake = fakeServer((call, socket) => {
      calls.push(call);
      if (call.method === "notifications.subscribe") {
        const id = `sub${calls.length}`;
        socket.push({ jsonrpc: "2.0", id: call.id, result: id });
        socket.push(notify(id, calls.length));
        if (calls.length === 1) socket.push(end(id, "SUBSCRIPTION_LAGGED"));
      } else {
        socket.push({ jsonrpc: "2.0", id: call.id, result: true });
      }
    });
    const ws = createWsClient({ url: "ws://fake.invalid/rpc", WebSocket: fake.WebSocket, reconnect: fast });
    const seen: string[] = [];
    let completed = 0;
    const unsubscribe = ws.notifications.subscribe({}, { onData: (n) => seen.push(n.id), onComplete: () => completed++ });
    await until(() => seen.length === 2, "two items");
    assert.deepEqual(calls[1]!.params, { after: "n1" });
    unsubscribe();
    await until(() => calls.length === 3, "the unsubscribe call");
    assert.deepEqual(calls[2], { jsonrpc: "2.0", id: calls[2]!.id, method: "notifications.unsubscribe", params: { subscription: "sub2" } });
    assert.equal(completed, 1);
    assert.equal(fake.sockets.length, 1);
    ws.close();
  });

  it("SESSION_ENDED stops it with a typed error until setToken(); then it resumes", async () => {
    const subscribes: Call[] = [];
    const fake = fakeServer((call, socket) => {
      if (call.method !== "notifications.subscribe") return;
      subscribes.push(call);
      const id = `sub${subscribes.length}`;
      socket.push({ jsonrpc: "2.0", id: call.id, result: id });
      socket.push(notify(id, subscribes.length));
      if (subscribes.length === 1) {
        socket.push(end(id, "SESSION_ENDED", -32001));
        socket.drop(4001);
      }
    });
    const ws = createWsClient({ url: "ws://fake.invalid/rpc", WebSocket: fake.WebSocket, accessToken: "old", reconnect: fast });
    const seen: string[] = [];
    const errors: unknown[] = [];
    const unsubscribe = ws.notifications.subscribe({}, { onData: (n) => seen.push(n.id), onError: (e) => errors.push(e) });
    await until(() => errors.length === 1, "the error");
    const error = errors[0];
    assert.ok(error instanceof RpcError && error.reason === "SESSION_ENDED" && error.requestId === "r1", String(error));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(subscribes.length, 1, "no resume without a fresh token");

    assert.equal(await ws.setToken("fresh"), undefined);
    await until(() => seen.length === 2, "the item after the resume");
    assert.deepEqual(subscribes[1]!.params, { after: "n1" });
    assert.equal(new URL(fake.sockets[1]!.url).searchParams.get("access_token"), "fresh");
    unsubscribe();
    ws.close();
  });

  it("the iterator form: items in order, an ending error thrown by the loop, close() finishes it", async () => {
    const fake = fakeServer((call, socket) => {
      if (call.method !== "notifications.subscribe") return;
      if ((call.params as { after?: string }).after === "bad") {
        return socket.push({ jsonrpc: "2.0", id: call.id, error: { code: -32602, message: "no", data: { reason: "VALIDATION" } } });
      }
      socket.push({ jsonrpc: "2.0", id: call.id, result: "s" });
      for (let i = 1; i <= 3; i++) socket.push(notify("s", i));
    });
    const ws = createWsClient({ url: "ws://fake.invalid/rpc", WebSocket: fake.WebSocket, reconnect: fast });
    const seen: Notification[] = [];
    for await (const n of ws.notifications.subscribe()) {
      seen.push(n);
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen.map((n) => n.id), ["n1", "n2", "n3"]);

    const refused = await (async () => {
      for await (const _ of ws.notifications.subscribe({ after: "bad" as Notification["id"] })) return "an item";
      return "done";
    })().catch((e: unknown) => e);
    assert.ok(refused instanceof RpcError && refused.reason === "VALIDATION", String(refused));

    const open = ws.notifications.subscribe();
    const taken: string[] = [];
    const loop = (async () => {
      for await (const n of open) taken.push(n.id);
    })();
    await until(() => taken.length === 3, "three items");
    ws.close();
    await loop;
  });
});
