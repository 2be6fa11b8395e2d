// The SDK against the real server: the auth flow, batches and sessions.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Session, UnauthenticatedError, createClient, isRpcError, type LogoutEvent } from "../dist/index.js";
import { countingFetch, password, randomEmail, startServer, type RunningServer } from "./server.js";

describe("against the server", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  it("auth flow: register, login, me, refresh, reuse refused, login, logout, me refused", async () => {
    const client = createClient({ url: server.url });
    const email = randomEmail();

    const registered = await client.auth.register({ email, password, displayName: "Ann" });
    assert.equal(typeof registered.userId, "string");

    const first = await client.auth.login({ email, password });
    assert.equal(first.tokenType, "Bearer");
    assert.equal(first.user.email, email);

    const bearer = (token: string) => createClient({ url: server.url, headers: { Authorization: `Bearer ${token}` } });
    const me = await bearer(first.accessToken).auth.me();
    assert.equal(me.user.id, registered.userId);
    assert.deepEqual(me.memberships, []);

    const rotated = await client.auth.refresh({ refreshToken: first.refreshToken });
    assert.notEqual(rotated.refreshToken, first.refreshToken);

    const reuse = await client.auth.refresh({ refreshToken: first.refreshToken }).catch((e: unknown) => e);
    assert.ok(reuse instanceof UnauthenticatedError);
    assert.ok(isRpcError(reuse, "auth.refresh"));
    assert.equal(reuse.reason, "TOKEN_REUSED");
    assert.equal(reuse.code, -32001);
    assert.equal(typeof reuse.requestId, "string");

    // A wrong password, narrowed through the procedure's reasons.
    const wrong = await client.auth.login({ email, password: "not the password" }).catch((e: unknown) => e);
    assert.ok(isRpcError(wrong, "auth.login") && wrong.reason === "INVALID_CREDENTIALS");

    // A session picks the tokens up from auth.login and reports the logout.
    const events: LogoutEvent[] = [];
    const session = new Session({ onLogout: (e) => events.push(e) });
    const signedIn = createClient({ url: server.url, session });
    const second = await signedIn.auth.login({ email, password });
    assert.equal(session.tokens?.accessToken, second.accessToken);
    assert.equal((await signedIn.auth.me()).user.email, email);

    await signedIn.auth.logout();
    assert.deepEqual(events, [{ reason: "logout" }]);
    assert.equal(session.signedIn, false);

    const missing = await signedIn.auth.me().catch((e: unknown) => e);
    assert.ok(isRpcError(missing, "auth.me") && missing.reason === "CREDENTIALS_MISSING");
    const ended = await bearer(second.accessToken).auth.me().catch((e: unknown) => e);
    assert.ok(ended instanceof UnauthenticatedError, "the ended session's access token is refused");
  });

  it("explicit batch: one request, a typed tuple of settled results", async () => {
    const counter = countingFetch();
    const client = createClient({ url: server.url, fetch: counter.fetch });
    const [me, health, discover] = await client.batch((b) => [b.auth.me(), b.health.check(), b.rpc.discover()]);
    assert.equal(counter.bodies.length, 1);
    assert.equal(JSON.parse(counter.bodies[0]!).length, 3);

    assert.equal(me.ok, false);
    if (!me.ok) assert.ok(isRpcError(me.error, "auth.me") && me.error.reason === "CREDENTIALS_MISSING");
    assert.ok(health.ok);
    if (health.ok) assert.equal(health.value.status, "ok");
    assert.ok(discover.ok);
  });

  it("auto-batching: five calls in one tick leave as one HTTP request", async () => {
    const counter = countingFetch();
    const client = createClient({ url: server.url, fetch: counter.fetch });
    const email = randomEmail();
    const results = await Promise.allSettled([
      client.health.check(),
      client.rpc.discover(),
      client.auth.register({ email, password }),
      client.auth.me(),
      client.health.check(),
    ]);
    assert.equal(counter.bodies.length, 1, "one HTTP request");
    const batch = JSON.parse(counter.bodies[0]!) as { method: string }[];
    assert.deepEqual(
      batch.map((c) => c.method),
      ["health.check", "rpc.discover", "auth.register", "auth.me", "health.check"],
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled"],
    );
  });
});

// The server accepts a token up to 5 s past its `exp` (clock skew leeway), so
// with a 1 s lifetime a token is refused about 7 s after it was issued.
const LEEWAY_SECS = 5;

async function untilRefused(accessToken: string): Promise<void> {
  const claims = JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()) as { exp: number };
  const wait = (claims.exp + LEEWAY_SECS + 1) * 1000 + 100 - Date.now();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
}

describe("session refresh", () => {
  let server: RunningServer;
  const counter = countingFetch();
  // Two sessions signed in up front, so both tests share one wait for expiry.
  const fresh = { events: [] as LogoutEvent[], session: undefined as unknown as Session, email: randomEmail(), firstAccess: "" };
  const stolen = { events: [] as LogoutEvent[], session: undefined as unknown as Session, email: randomEmail() };

  before(async () => {
    server = await startServer({ env: { TRELLIS_ACCESS_TOKEN_TTL_SECS: "1" } });
    fresh.session = new Session({ onLogout: (e) => fresh.events.push(e) });
    stolen.session = new Session({ onLogout: (e) => stolen.events.push(e) });
    const plain = createClient({ url: server.url });
    for (const { email, session } of [fresh, stolen]) {
      await plain.auth.register({ email, password });
      await createClient({ url: server.url, session }).auth.login({ email, password });
    }
    fresh.firstAccess = fresh.session.tokens!.accessToken;
    // Someone else spends this refresh token, so the session's own refresh is a reuse.
    await plain.auth.refresh({ refreshToken: stolen.session.tokens!.refreshToken });
    // The later of the two tokens, so both are expired.
    await untilRefused(stolen.session.tokens!.accessToken);
  });
  after(() => server?.stop());

  it("refreshes an expired access token once for concurrent calls", async () => {
    const client = createClient({ url: server.url, fetch: counter.fetch, session: fresh.session });
    const [a, b] = await Promise.all([client.auth.me(), client.auth.me()]);
    assert.equal(a.user.email, fresh.email);
    assert.equal(b.user.email, fresh.email);

    // Both calls left together and were both refused for the expired token.
    assert.equal((JSON.parse(counter.bodies[0]!) as unknown[]).length, 2);
    const refreshes = counter.bodies.filter((body) => body.includes('"auth.refresh"'));
    assert.equal(refreshes.length, 1, "exactly one refresh");
    assert.notEqual(fresh.session.tokens?.accessToken, fresh.firstAccess);
    assert.deepEqual(fresh.events, []);
  });

  it("reports the logout when the refresh is refused", async () => {
    const client = createClient({ url: server.url, session: stolen.session });
    const failed = await client.auth.me().catch((e: unknown) => e);
    assert.ok(isRpcError(failed, "auth.me"), String(failed));
    assert.equal(failed.reason, "TOKEN_EXPIRED");
    assert.equal(stolen.events.length, 1);
    assert.equal(stolen.events[0]!.reason, "refresh-failed");
    const cause = stolen.events[0]!.error;
    assert.ok(isRpcError(cause, "auth.refresh") && cause.reason === "TOKEN_REUSED");
    assert.equal(stolen.session.signedIn, false);
  });
});
