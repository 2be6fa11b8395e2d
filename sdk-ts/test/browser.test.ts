// The SDK in headless Chromium (Debian's `chromium`, driven by playwright-core;
// no browser download). A page on another origin than the API signs in over
// HTTP (CORS), subscribes over WebSocket and shows, in its DOM, a notification
// this test causes with the Node SDK. The same page served from an origin the
// server does not allow cannot sign in.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import { chromium, type Browser, type Page } from "playwright-core";

import { makeKeys, ownerWithOrg } from "./notify.js";
import { freePort, password, startServer, type RunningServer } from "./server.js";

const sdkRoot = fileURLToPath(new URL("..", import.meta.url));
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };

/** Serves the page at / and the compiled SDK (dist/) under /sdk/. */
async function staticServer(port: number): Promise<Server> {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file =
      path === "/"
        ? join(sdkRoot, "test", "browser", "index.html")
        : path.startsWith("/sdk/")
          ? join(sdkRoot, "dist", normalize(path.slice("/sdk/".length)).replace(/^(\.\.[/\\])+/, ""))
          : undefined;
    try {
      if (!file) throw new Error("not found");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

describe("the SDK in headless Chromium", () => {
  let api: RunningServer;
  let allowed: Server;
  let other: Server;
  let allowedOrigin: string;
  let otherOrigin: string;
  let browser: Browser;

  before(async () => {
    assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`);
    const [allowedPort, otherPort] = [await freePort(), await freePort()];
    allowedOrigin = `http://127.0.0.1:${allowedPort}`;
    otherOrigin = `http://127.0.0.1:${otherPort}`;
    api = await startServer({ env: { TRELLIS_CORS_ORIGINS: allowedOrigin } });
    allowed = await staticServer(allowedPort);
    other = await staticServer(otherPort);
    browser = await chromium.launch({ executablePath: chromiumPath });
  });
  after(async () => {
    await browser?.close();
    allowed?.close();
    other?.close();
    await api?.stop();
  });

  const open = async (origin: string, email: string): Promise<Page> => {
    const page = await browser.newPage();
    const query = new URLSearchParams({ api: api.url, email, password });
    await page.goto(`${origin}/?${query}`);
    return page;
  };

  it("signs in across origins, subscribes over WebSocket, and shows a notification caused by another client", async () => {
    const owner = await ownerWithOrg(api.url);
    const me = await owner.client.auth.me();
    const page = await open(allowedOrigin, me.user.email);
    try {
      await page.waitForFunction(() => document.getElementById("status")?.textContent !== "starting", null, { timeout: 10_000 });
      assert.equal(await page.textContent("#status"), "subscribed");
      // Keys made until the page shows one (its subscribe call may still be
      // on its way; the browser's sign-in may also show `signin.newDevice`).
      const created = page.locator('#notifications li[data-type="apiKey.created"]');
      const deadline = Date.now() + 15_000;
      while ((await created.count()) === 0) {
        assert.ok(Date.now() < deadline, `nothing shown; status: ${await page.textContent("#status")}`);
        await makeKeys(owner, 1, "from-node");
        await page.waitForTimeout(200);
      }
      const id = await created.first().getAttribute("data-id");
      const kept = await owner.client.notifications.list({});
      assert.ok(kept.items.some((n) => n.id === id && n.type === "apiKey.created"), `${id} is one of the owner's notifications`);
    } finally {
      await page.close();
    }
  });

  it("from an origin the server does not allow, signing in fails", async () => {
    const owner = await ownerWithOrg(api.url);
    const me = await owner.client.auth.me();
    const page = await open(otherOrigin, me.user.email);
    try {
      await page.waitForFunction(() => document.getElementById("status")?.textContent !== "starting", null, { timeout: 10_000 });
      assert.match((await page.textContent("#status")) ?? "", /^error: ConnectionError/);
    } finally {
      await page.close();
    }
  });
});
