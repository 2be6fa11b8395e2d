// Retries against a real server that is briefly down.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";

import { ConnectionError, createClient } from "../dist/index.js";
import { countingFetch, freePort, password, randomEmail, startServer, type RunningServer } from "./server.js";

describe("retry", () => {
  let server: RunningServer | undefined;
  after(() => server?.stop());

  it("a query succeeds once the server comes up; a mutation is not retried unless it opts in", async () => {
    const port = await freePort();
    const counter = countingFetch();
    // More retries than the default: the debug server needs a moment to boot.
    const client = createClient({ url: `http://127.0.0.1:${port}/rpc`, fetch: counter.fetch, retry: { retries: 5 } });

    // Nothing listens yet: the mutation fails at once, with one request.
    await assert.rejects(client.auth.register({ email: randomEmail(), password }), ConnectionError);
    assert.equal(counter.bodies.length, 1);

    // Opted in, it is retried (short delays keep the test quick).
    await assert.rejects(
      client.auth.register({ email: randomEmail(), password }, { retryMutation: true, retry: { retries: 2, baseDelayMs: 10 } }),
      ConnectionError,
    );
    assert.equal(counter.bodies.length, 1 + 3);

    counter.bodies.length = 0;
    const starting = new Promise<void>((resolve, reject) =>
      setTimeout(() => startServer({ port }).then((s) => ((server = s), resolve()), reject), 700),
    );
    const health = await client.health.check();
    await starting;
    assert.equal(health.status, "ok");
    assert.ok(counter.bodies.length >= 2, `retried: ${counter.bodies.length} requests`);
  });
});
