// Runs the real `trellis` binary for a test: a free port, a fresh data dir,
// ready once POST /rpc answers health.check, stopped with SIGTERM after.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** sdk-ts/, from dist-test/server.js. */
const sdkRoot = fileURLToPath(new URL("..", import.meta.url));
export const serverBin = process.env.TRELLIS_BIN ?? join(sdkRoot, "..", "target", "debug", "trellis");

export interface RunningServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export async function startServer(options: { port?: number; env?: Record<string, string> } = {}): Promise<RunningServer> {
  const port = options.port ?? (await freePort());
  const dataDir = await mkdtemp(join(tmpdir(), "trellis-sdk-test-"));
  const url = `http://127.0.0.1:${port}/rpc`;
  const child = spawn(serverBin, [], {
    env: {
      ...process.env,
      TRELLIS_LISTEN: `127.0.0.1:${port}`,
      TRELLIS_DATA_DIR: dataDir,
      RUST_LOG: "warn",
      // Every test signs in from 127.0.0.1: lift the per-IP and per-account
      // sign-in limits far above what the suite does.
      TRELLIS_AUTH_RATE_PER_IP: "100000",
      TRELLIS_AUTH_RATE_PER_ACCOUNT: "10000",
      TRELLIS_MAIL_RATE_PER_ACCOUNT: "10000",
      ...options.env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  // Kept for the failure message if the server never comes up.
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Should the test process die without `stop`, the server must not outlive it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const stop = async () => {
    process.off("exit", killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    await waitUntilReady(url, child);
  } catch (error) {
    await stop();
    throw new Error(`${serverBin} did not start: ${(error as Error).message}\n${stderr}`);
  }
  return { url, port, stop };
}

async function waitUntilReady(url: string, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", method: "health.check", id: 1 }),
      });
      const answer = (await response.json()) as { result?: unknown };
      if (answer.result !== undefined) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no answer within ${timeoutMs} ms`);
}

/** A `fetch` that records each request body, to count HTTP requests and see what they carried. */
export function countingFetch(): { fetch: typeof fetch; bodies: string[] } {
  const bodies: string[] = [];
  return {
    bodies,
    fetch: (input, init) => {
      bodies.push(String(init?.body ?? ""));
      return fetch(input, init);
    },
  };
}

export function randomEmail(): string {
  return `user-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

export const password = "correct horse battery staple";
