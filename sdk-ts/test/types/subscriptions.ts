// Type tests of subscriptions: WebSocket only, items typed from the procedure map.

import { createClient, createWsClient, isRpcError, type ItemOf, type Notification, type Subscription } from "../../dist/index.js";

const http = createClient({ url: "http://127.0.0.1:8080/rpc" });
const ws = createWsClient({ url: "ws://127.0.0.1:8080/rpc" });

export async function notOverHttp() {
  // @ts-expect-error a subscription is not a plain call over HTTP
  await http.notifications.subscribe({});
  // @ts-expect-error nor by name
  await http.call("notifications.subscribe", {});
  // @ts-expect-error nor its unsubscribe method: the SDK calls it
  await http.notifications.unsubscribe({ subscription: "x" });
  // @ts-expect-error nor in a batch
  await http.batch((b) => [b.notifications.subscribe({})]);
  // @ts-expect-error nor by name over WebSocket
  await ws.call("notifications.subscribe", {});
  // @ts-expect-error the WebSocket client does not offer the unsubscribe method either
  await ws.notifications.unsubscribe({ subscription: "x" });
  // The rest of the namespace stays.
  await http.notifications.list({});
  await ws.notifications.list({});
}

export function callbacks(): () => void {
  const unsubscribe = ws.notifications.subscribe(
    {},
    {
      onData: (n) => {
        const item: Notification = n;
        const kind: string = n.type;
        // @ts-expect-error an item has no such field
        n.nope;
        return [item, kind];
      },
      onError: (err) => {
        if (isRpcError(err, "notifications.subscribe")) {
          const reason: "SESSION_ENDED" | "TOO_MANY_SUBSCRIPTIONS" | "SUBSCRIPTION_LAGGED" | (string & {}) = err.reason;
          return reason;
        }
        return undefined;
      },
      onComplete: () => {},
    },
  );
  // @ts-expect-error handlers need onData
  ws.notifications.subscribe({}, { onError: () => {} });
  // @ts-expect-error wrong params
  ws.notifications.subscribe({ since: 1 }, { onData: () => {} });
  return unsubscribe;
}

export async function iterator() {
  const subscription: Subscription<Notification> = ws.notifications.subscribe();
  for await (const n of subscription) {
    const id: Notification["id"] = n.id;
    // @ts-expect-error the item is a Notification, not a string
    const wrong: string = n;
    if (id) break;
    return wrong;
  }
  subscription.unsubscribe();
  // @ts-expect-error the iterator form is not a promise
  await ws.notifications.subscribe().then(() => {});
  const item: ItemOf<"notifications.subscribe"> = null as unknown as Notification;
  return item;
}
