// Subscriptions against the real server: `ws.notifications.subscribe(...)`
// receives what another client causes (a key made in an organization the
// subscriber owns notifies its owner), in both forms; unsubscribing stops the
// items; and a subscription cut off by a TCP proxy resumes after its last
// item, 1,000 notifications later, with none lost or repeated.

import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";

import { createWsClient, type Notification } from "../dist/index.js";
import { allNotifications, makeKeys, makeKeysUntilSeen, ownerWithOrg, until } from "./notify.js";
import { startServer, type RunningServer } from "./server.js";

/** A TCP proxy to `port` whose connections the test can cut, and which can refuse new ones for a while. */
async function tcpProxy(port: number): Promise<{ url: string; cut(): void; refuse(on: boolean): void; close(): Promise<void> }> {
  const open = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = connect(port, "127.0.0.1");
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.on("error", () => b.destroy());
      a.on("close", () => (open.delete(a), b.destroy()));
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("no proxy address");
  return {
    url: `ws://127.0.0.1:${address.port}/rpc`,
    cut: () => {
      for (const socket of open) socket.destroy();
    },
    refuse: (on) => {
      refusing = on;
    },
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe("notifications.subscribe against the server", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  it("delivers what another client causes; unsubscribing stops the items", async () => {
    const owner = await ownerWithOrg(server.url);
    const ws = createWsClient({ url: server.url, accessToken: owner.accessToken });
    try {
      const seen: Notification[] = [];
      const errors: unknown[] = [];
      const unsubscribe = ws.notifications.subscribe({}, { onData: (n) => seen.push(n), onError: (e) => errors.push(e) });
      await makeKeysUntilSeen(owner, seen);
      assert.deepEqual(errors, []);

      unsubscribe();
      const count = seen.length;
      await makeKeys(owner, 3, "after");
      // The list gets them (events become notifications shortly after the
      // change); the subscription gets none.
      const deadline = Date.now() + 10_000;
      while ((await allNotifications(owner)).length < count + 3) {
        assert.ok(Date.now() < deadline, "the three keys' notifications were not kept");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(seen.length, count);
    } finally {
      ws.close();
    }
  });

  it("the iterator form, resumed with `after`", async () => {
    const owner = await ownerWithOrg(server.url);
    await makeKeys(owner, 3, "before");
    // Notifications are written by the dispatcher just after each call: wait for the three.
    let listed: Notification[] = [];
    const deadline = Date.now() + 10_000;
    while ((listed = await allNotifications(owner)).filter((n) => n.type === "apiKey.created").length < 3) {
      assert.ok(Date.now() < deadline, "the three notifications were never listed");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [oldest] = listed;
    const ws = createWsClient({ url: server.url, accessToken: owner.accessToken });
    try {
      const ids: string[] = [];
      for await (const n of ws.notifications.subscribe({ after: oldest!.id })) {
        ids.push(n.id);
        if (ids.length === 2) break;
      }
      const all = await allNotifications(owner);
      assert.deepEqual(ids, all.slice(1, 3).map((n) => n.id));
    } finally {
      ws.close();
    }
  });

  it("resumes across connections cut by a proxy: 1,000 notifications, in order, none lost or repeated", async () => {
    const owner = await ownerWithOrg(server.url);
    const proxy = await tcpProxy(server.port);
    const ws = createWsClient({ url: proxy.url, accessToken: owner.accessToken, reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    try {
      const seen: Notification[] = [];
      const errors: unknown[] = [];
      const unsubscribe = ws.notifications.subscribe({}, { onData: (n) => seen.push(n), onError: (e) => errors.push(e) });
      await makeKeysUntilSeen(owner, seen);
      const before = seen.length;

      // Cut, and keep the proxy shut while 1,000 notifications are made.
      proxy.refuse(true);
      proxy.cut();
      await makeKeys(owner, 1_000, "bulk");
      proxy.refuse(false);
      // Cut once more while the backlog streams in.
      await until(() => seen.length >= before + 200, "the backlog to start");
      proxy.cut();
      await until(() => seen.length >= before + 1_000, "all 1,000");
      await new Promise((resolve) => setTimeout(resolve, 200));

      // Probes made before the subscription was live are kept but were not sent.
      const all: string[] = (await allNotifications(owner)).map((n) => n.id);
      const ids: string[] = seen.map((n) => n.id);
      const since = all.slice(all.indexOf(ids[0]!));
      assert.equal(ids.length, before + 1_000);
      assert.equal(new Set(ids).size, ids.length, "no duplicate");
      assert.deepEqual(ids, since, "exactly the kept notifications, in order");
      assert.deepEqual(errors, []);
      unsubscribe();
    } finally {
      ws.close();
      await proxy.close();
    }
  });
});
