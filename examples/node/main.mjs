// Run: npm --prefix sdk-ts ci && npm --prefix sdk-ts run build && node examples/node/main.mjs [url]
//
// Registers a random account on a running Trellis server (default
// http://127.0.0.1:8080/rpc), signs in with a session, and prints `auth.me`.

import { Session, createClient, isRpcError } from "../../sdk-ts/dist/index.js";

const url = process.argv[2] ?? "http://127.0.0.1:8080/rpc";

async function main() {
  const session = new Session({ onLogout: ({ reason }) => console.error(`signed out (${reason})`) });
  const client = createClient({ url, session });

  const email = `example-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const password = "correct horse battery staple";
  const { userId } = await client.auth.register({ email, password, displayName: "Example User" });
  console.log(`registered ${email} (${userId})`);

  // The session keeps the tokens and sends them from now on.
  await client.auth.login({ email, password });
  const { user, memberships } = await client.auth.me();
  console.log(JSON.stringify({ user, memberships }, null, 2));

  await session.logout();
}

main().catch((err) => {
  if (isRpcError(err)) {
    console.error(`${err.category} (${err.reason}): ${err.message} [request ${err.requestId}]`);
  } else {
    console.error(err instanceof Error ? err.message : err);
  }
  process.exit(1);
});
