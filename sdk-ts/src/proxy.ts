// The one runtime trick behind `client.auth.login(...)`: a callable Proxy that
// records the property path and turns a call into a dotted method name.

/**
 * A callable proxy standing for a path of names: property access extends the
 * path, a call invokes `leaf` with the dotted method name.
 */
export function pathProxy(path: string[], leaf: (method: string, args: unknown[]) => unknown): unknown {
  return new Proxy(() => {}, {
    get(_target, prop) {
      // `then` must stay undefined, or `await client.auth` would call `auth.then`.
      if (typeof prop !== "string" || prop === "then") return undefined;
      return pathProxy([...path, prop], leaf);
    },
    apply(_target, _this, args) {
      return leaf(path.join("."), args);
    },
  });
}
