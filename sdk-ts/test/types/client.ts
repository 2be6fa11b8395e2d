// Type tests: compiled with `tsc --noEmit -p test/types`, never run. Each
// `@ts-expect-error` must meet an error, so a check the types stop making
// fails the build. They use the built declarations, as users do.

import { Session, createClient, isRpcError, type ReasonOf } from "../../dist/index.js";

const client = createClient({ url: "http://127.0.0.1:8080/rpc", session: new Session() });

export async function methods() {
  // @ts-expect-error a method that does not exist
  await client.auth.nope();
  // @ts-expect-error a namespace that does not exist
  await client.billing.charge({});
  // @ts-expect-error by name too
  await client.call("auth.nope", {});

  // Params may be left out only when nothing in them is required.
  await client.auth.me();
  await client.health.check({}, { timeoutMs: 1_000 });
  await client.auth.logout();
  // @ts-expect-error auth.login needs its params
  await client.auth.login();
}

export async function params() {
  await client.auth.login({ email: "a@example.com", password: "secret", otp: "123456" });
  // @ts-expect-error wrong type of a param
  await client.auth.login({ email: "a@example.com", password: 42 });
  // @ts-expect-error unknown field
  await client.auth.login({ email: "a@example.com", password: "secret", remember: true });
  // @ts-expect-error a missing required field
  await client.auth.login({ email: "a@example.com" });
  // @ts-expect-error params where none are taken
  await client.auth.me({ userId: "x" });
  // @ts-expect-error unknown call option
  await client.auth.me({}, { retries: 3 });
}

export async function results() {
  const tokens = await client.auth.login({ email: "a@example.com", password: "secret" });
  const access: string = tokens.accessToken;
  const seconds: number = tokens.expiresIn;
  // @ts-expect-error no such field
  tokens.user.nope;
  // @ts-expect-error wrong type of a result field
  const wrong: number = tokens.user.email;
  const me = await client.call("auth.me");
  me.memberships.map((m) => m.org.slug);
  return [access, seconds, wrong];
}

export async function batches() {
  const [me, health] = await client.batch((b) => [b.auth.me(), b.health.check()]);
  if (me.ok) me.value.user.email.toLowerCase();
  // @ts-expect-error a result must be checked before use
  me.value;
  if (health.ok) {
    // @ts-expect-error the health result has no user
    health.value.user;
  }
  // @ts-expect-error wrong params inside a batch
  await client.batch((b) => [b.auth.login({ email: 1 })]);
  // @ts-expect-error the tuple has two entries
  const [, , third] = await client.batch((b) => [b.auth.me(), b.health.check()]);
  return third;
}

export function reasons(err: unknown): string {
  if (!isRpcError(err, "auth.login")) return "not a login error";
  switch (err.reason) {
    case "INVALID_CREDENTIALS":
    case "ACCOUNT_DISABLED":
      return "refused";
    case "ACCOUNT_LOCKED":
      return `locked for ${err.data.retryAfterMs ?? "?"} ms`;
    case "MFA_REQUIRED":
      return "ask for a one-time code";
    case "OTP_INVALID":
      return "wrong one-time code";
    case "EMAIL_NOT_VERIFIED":
      return "verify the address first";
    case "PASSWORD_EXPIRED":
      return "reset the password";
    case "VALIDATION":
      return "bad params";
    case "RATE_LIMITED":
    case "DATABASE_UNAVAILABLE":
    case "CACHE_UNAVAILABLE":
    case "SHUTTING_DOWN":
    case "INTERNAL":
      return "try later";
    // @ts-expect-error auth.login cannot answer TOKEN_REUSED
    case "TOKEN_REUSED":
      return "impossible";
    // @ts-expect-error nor CREDENTIALS_MISSING: it is public
    case "CREDENTIALS_MISSING":
      return "impossible";
    default: {
      const _exhaustive: never = err.reason;
      return _exhaustive;
    }
  }
}

// The reason unions come straight from the generated table.
export const refreshReason: ReasonOf<"auth.refresh"> = "TOKEN_REUSED";
// @ts-expect-error auth.me has no INVALID_CREDENTIALS
export const meReason: ReasonOf<"auth.me"> = "INVALID_CREDENTIALS";
export const resetReason: ReasonOf<"auth.resetPassword"> = "PASSWORD_POLICY";
// @ts-expect-error auth.register answers the same for a taken address: no ALREADY_EXISTS
export const registerReason: ReasonOf<"auth.register"> = "ALREADY_EXISTS";

export async function typedIds() {
  const me = await client.auth.me();
  const { items } = await client.orgs.list();
  const orgId = items[0]!.org.id;
  await client.orgs.get({ orgId });
  await client.orgs.removeMember({ orgId, userId: me.user.id });
  // @ts-expect-error a user's id is not an organization's
  await client.orgs.get({ orgId: me.user.id });
  // @ts-expect-error nor is any string: ids come from the API
  await client.orgs.get({ orgId: "01930000-0000-7000-8000-000000000002" });
  // @ts-expect-error an organization's id is not a user's
  await client.orgs.removeMember({ orgId, userId: orgId });
  // An audit actor is a user or a key.
  await client.audit.list({ orgId, actorId: me.user.id });
}
