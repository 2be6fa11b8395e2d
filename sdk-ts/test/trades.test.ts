// A whole deal on the trade desk through the TypeScript SDK, against the real
// server: a buyer posts a public request over its approval threshold, two
// sellers offer (one from a lot), buyer and seller counter in turn, the
// seller accepts the buyer's last counter (the other offer is rejected), the
// buyer approves (a member other than the one who accepted), and the deal is
// confirmed. Every step is heard live, on its WebSocket subscription, by the
// party it concerns.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { RpcError, createWsClient, type Notification, type Offer, type Trade } from "../dist/index.js";
import { makeKeysUntilSeen, ownerWithOrg, until, type Owner } from "./notify.js";
import { startServer, type RunningServer } from "./server.js";

interface Party {
  owner: Owner;
  heard: Notification[];
  close(): void;
}

/** A user with an organization, subscribed to its notifications (live once a probe arrived). */
async function party(url: string): Promise<Party> {
  const owner = await ownerWithOrg(url);
  const ws = createWsClient({ url, accessToken: owner.accessToken });
  const heard: Notification[] = [];
  ws.notifications.subscribe({}, { onData: (n) => heard.push(n), onError: () => {} });
  await makeKeysUntilSeen(owner, heard);
  return { owner, heard, close: () => ws.close() };
}

/** Waits until `p` heard a `type` notification about `offerId` (or the trade). */
async function hears(p: Party, type: string, id: string): Promise<void> {
  await until(
    () => p.heard.some((n) => n.type === type && (n.data.offerId === id || n.data.tradeId === id)),
    `${type} about ${id}`,
    10_000,
  );
}

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe("the trade desk through the SDK", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  it("goes from a public request to a confirmed deal, each step heard live", async () => {
    const [buyer, seller, rival] = await Promise.all([party(server.url), party(server.url), party(server.url)]);
    try {
      const a = buyer.owner.client;
      const org = await a.orgs.update({ orgId: buyer.owner.orgId, approvalThresholds: { EUR: "10000" } } as never);
      assert.deepEqual(org.approvalThresholds, { EUR: "10000" });

      const trade: Trade = await a.trades.create({
        orgId: buyer.owner.orgId,
        side: "buy",
        commodity: "wheat",
        quantity: "120",
        unit: "t",
        priceLimit: "245",
        currency: "EUR",
        visibility: "public",
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      } as never);
      assert.equal(trade.status, "open");

      const lot = await seller.owner.client.lots.create({
        orgId: seller.owner.orgId,
        commodity: "wheat",
        quantity: "120",
        unit: "t",
        location: "Rotterdam",
        quality: { grade: "2", testedAt: new Date(Date.now() - 86_400_000).toISOString() },
      } as never);
      let fromSeller: Offer = await seller.owner.client.trades.offer({
        tradeId: trade.id,
        orgId: seller.owner.orgId,
        price: "250",
        quantity: "120",
        lotId: lot.id,
        validUntil: inAnHour(),
      } as never);
      await hears(buyer, "trade.offerMade", fromSeller.id);
      const fromRival: Offer = await rival.owner.client.trades.offer({
        tradeId: trade.id,
        orgId: rival.owner.orgId,
        price: "248",
        quantity: "100",
        validUntil: inAnHour(),
      } as never);
      await hears(buyer, "trade.offerMade", fromRival.id);

      // Counters in turn; the seller may not counter its own proposal.
      const move = (who: Party, offer: Offer, action: string, price?: string) =>
        who.owner.client.trades.negotiate({
          offerId: offer.id,
          orgId: who.owner.orgId,
          expectedVersion: offer.version,
          action,
          ...(price ? { price } : {}),
        } as never);
      await assert.rejects(move(seller, fromSeller, "counter", "249"), (e: unknown) => {
        assert.ok(e instanceof RpcError);
        assert.equal(e.reason, "NOT_YOUR_TURN");
        return true;
      });
      fromSeller = await move(buyer, fromSeller, "counter", "245");
      assert.equal(fromSeller.status, "countered");
      await hears(seller, "trade.offerCountered", fromSeller.id);
      fromSeller = await move(seller, fromSeller, "counter", "247");
      await hears(buyer, "trade.offerCountered", fromSeller.id);
      fromSeller = await move(buyer, fromSeller, "counter", "246");
      await hears(seller, "trade.offerCountered", fromSeller.id);

      // The seller accepts the buyer's 246: the rival's offer is rejected;
      // 246 × 120 = 29,520 EUR is over the buyer's threshold.
      fromSeller = await move(seller, fromSeller, "accept");
      assert.equal(fromSeller.status, "accepted");
      await hears(buyer, "trade.offerAccepted", fromSeller.id);
      await hears(rival, "trade.offerRejected", fromRival.id);
      await hears(buyer, "trade.approvalNeeded", fromSeller.id);
      const pending: Trade = await a.trades.get({ tradeId: trade.id, orgId: buyer.owner.orgId } as never);
      assert.equal(pending.status, "pendingApproval");
      assert.deepEqual(
        pending.offers.map((o) => [o.id, o.status]),
        [
          [fromSeller.id, "accepted"],
          [fromRival.id, "rejected"],
        ],
      );
      assert.deepEqual(
        pending.offers[0]!.history.map((s) => [s.action, s.by, s.price]),
        [
          ["offer", "counterparty", "250"],
          ["counter", "owner", "245"],
          ["counter", "counterparty", "247"],
          ["counter", "owner", "246"],
          ["accept", "counterparty", "246"],
        ],
      );

      const confirmed: Trade = await a.trades.approve({
        tradeId: trade.id,
        orgId: buyer.owner.orgId,
        decision: "approve",
      } as never);
      assert.equal(confirmed.status, "confirmed");
      await hears(seller, "trade.confirmed", trade.id);

      // The rival sees its own offer only.
      const seenByRival: Trade = await rival.owner.client.trades.get({ tradeId: trade.id, orgId: rival.owner.orgId } as never);
      assert.deepEqual(
        seenByRival.offers.map((o) => o.id),
        [fromRival.id],
      );
    } finally {
      for (const p of [buyer, seller, rival]) p.close();
    }
  });
});
