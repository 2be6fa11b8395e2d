// Notifications on demand for the tests: a user owning an organization, and
// API keys made in it (each notifies the owner: `apiKey.created`).

import { Session, createClient, type Client, type Notification, type OrgId } from "../dist/index.js";
import { password, randomEmail } from "./server.js";

/** A user with an organization of their own; `client` acts as them over HTTP. */
export interface Owner {
  client: Client;
  accessToken: string;
  orgId: OrgId;
}

export async function ownerWithOrg(url: string): Promise<Owner> {
  const session = new Session();
  const client = createClient({ url, session });
  const email = randomEmail();
  await client.auth.register({ email, password });
  await client.auth.login({ email, password });
  const slug = `org-${Math.random().toString(36).slice(2, 10)}`;
  const org = await client.orgs.create({ name: "Notified", slug } as never);
  const accessToken = session.tokens!.accessToken;
  return { client, accessToken, orgId: (org as { id: OrgId }).id };
}

/** Makes `count` API keys in the owner's organization: one `apiKey.created` each for the owner. */
export async function makeKeys(owner: Owner, count: number, prefix = "key"): Promise<void> {
  const calls = [];
  for (let i = 0; i < count; i++) {
    calls.push(owner.client.apiKeys.create({ orgId: owner.orgId, name: `${prefix}-${i}`, scopes: ["apiKeys:read"] } as never));
  }
  await Promise.all(calls);
}

/** Every notification of the owner, oldest first (what the server kept). */
export async function allNotifications(owner: Owner): Promise<Notification[]> {
  const all: Notification[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await owner.client.notifications.list({ limit: 100, ...(cursor ? { cursor } : {}) } as never);
    all.push(...page.items);
    if (!page.nextCursor) return all.reverse();
    cursor = page.nextCursor;
  }
}

export async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Makes keys one at a time until the subscription has delivered an
 * `apiKey.created`: the subscribe call may still be on its way when the first
 * key is made. (Other notifications, such as `signin.newDevice` for a first
 * sign-in, may come too.)
 */
export async function makeKeysUntilSeen(owner: Owner, seen: Notification[]): Promise<Notification> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const created = seen.find((n) => n.type === "apiKey.created");
    if (created) return created;
    if (Date.now() > deadline) throw new Error(`no apiKey.created arrived (${seen.length} others)`);
    await makeKeys(owner, 1, "probe");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
