//! The trade desk's two state machines as data: one transition table per
//! machine, and the one function per machine that every change goes
//! through. A handler asks [`offer_step`] or [`trade_step`] what a move
//! leads to and writes that state under a condition on the state it read
//! (and the version the caller saw), so what the tables forbid never
//! reaches the database.
//!
//! A trade belongs to its owner organization; an offer is made on it by a
//! counterparty organization. The two parties of an offer take turns: a
//! `pending` offer waits for the owner (the counterparty moved last), a
//! `countered` one for the counterparty. Only the party whose turn it is
//! counters, accepts or rejects; the counterparty may withdraw its offer
//! at any time while it is open.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Where a trade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TradeStatus {
    /// Posted; no offer is open on it.
    Open,
    /// At least one offer is open.
    Negotiating,
    /// An offer was accepted (passed through on the way to `confirmed` or
    /// `pendingApproval`).
    Agreed,
    /// The deal is over the owner organization's approval threshold and
    /// waits for an approver.
    PendingApproval,
    Confirmed,
    Cancelled,
    Expired,
}

impl TradeStatus {
    pub const ALL: &'static [TradeStatus] = &[
        Self::Open,
        Self::Negotiating,
        Self::Agreed,
        Self::PendingApproval,
        Self::Confirmed,
        Self::Cancelled,
        Self::Expired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Negotiating => "negotiating",
            Self::Agreed => "agreed",
            Self::PendingApproval => "pendingApproval",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// A final state: nothing changes it any more.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Confirmed | Self::Cancelled | Self::Expired)
    }

    /// Whether offers may be made and negotiated.
    pub const fn takes_offers(self) -> bool {
        matches!(self, Self::Open | Self::Negotiating)
    }
}

/// Where an offer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OfferStatus {
    /// The counterparty moved last: the owner's turn.
    Pending,
    /// The owner moved last: the counterparty's turn.
    Countered,
    Accepted,
    Rejected,
    Withdrawn,
    Expired,
}

impl OfferStatus {
    pub const ALL: &'static [OfferStatus] =
        &[Self::Pending, Self::Countered, Self::Accepted, Self::Rejected, Self::Withdrawn, Self::Expired];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Countered => "countered",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// Still being negotiated.
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Countered)
    }

    /// The party whose move it is, while open.
    pub const fn turn(self) -> Option<Party> {
        match self {
            Self::Pending => Some(Party::Owner),
            Self::Countered => Some(Party::Counterparty),
            _ => None,
        }
    }
}

/// A side of an offer: the organization that owns the trade, or the one
/// that made the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Party {
    Owner,
    Counterparty,
}

impl Party {
    pub const fn other(self) -> Party {
        match self {
            Self::Owner => Self::Counterparty,
            Self::Counterparty => Self::Owner,
        }
    }
}

/// A move on an offer (`trades.negotiate`'s actions, and what the server
/// does by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OfferMove {
    /// A new price or quantity, by the party whose turn it is.
    Counter,
    /// Agree to the last proposal, by the party whose turn it is.
    Accept,
    /// End it, by the party whose turn it is.
    Reject,
    /// Take it back, by the counterparty, whoever's turn it is.
    Withdraw,
    /// Another offer of the trade was accepted (by the server).
    Outbid,
    /// Its `validUntil` passed, or its trade closed (by the server).
    Expire,
}

/// Who may make a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mover {
    /// The party whose turn it is.
    Turn,
    /// The counterparty, whoever's turn it is.
    Counterparty,
    /// The server only.
    Server,
}

/// The offer machine: from, move, who may make it, to.
pub const OFFER_TRANSITIONS: &[(OfferStatus, OfferMove, Mover, OfferStatus)] = {
    use OfferMove::*;
    use OfferStatus::*;
    &[
        (Pending, Counter, Mover::Turn, Countered),
        (Countered, Counter, Mover::Turn, Pending),
        (Pending, Accept, Mover::Turn, Accepted),
        (Countered, Accept, Mover::Turn, Accepted),
        (Pending, Reject, Mover::Turn, Rejected),
        (Countered, Reject, Mover::Turn, Rejected),
        (Pending, Withdraw, Mover::Counterparty, Withdrawn),
        (Countered, Withdraw, Mover::Counterparty, Withdrawn),
        (Pending, Outbid, Mover::Server, Rejected),
        (Countered, Outbid, Mover::Server, Rejected),
        (Pending, Expire, Mover::Server, Expired),
        (Countered, Expire, Mover::Server, Expired),
    ]
};

/// Who makes a move: one of the parties, or the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Party(Party),
    Server,
}

/// Why a move is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No transition leaves `from` by that move (INVALID_TRANSITION).
    InvalidTransition { from: &'static str, to: Option<&'static str> },
    /// The move is the other party's to make (NOT_YOUR_TURN).
    NotYourTurn,
}

/// What `mv` by `actor` does to an offer in `from`.
pub fn offer_step(from: OfferStatus, mv: OfferMove, actor: Actor) -> Result<OfferStatus, Refused> {
    let Some(&(_, _, mover, to)) = OFFER_TRANSITIONS.iter().find(|(f, m, _, _)| *f == from && *m == mv) else {
        return Err(Refused::InvalidTransition { from: from.as_str(), to: None });
    };
    let allowed = match (mover, actor) {
        (Mover::Server, Actor::Server) => true,
        (Mover::Turn, Actor::Party(p)) => from.turn() == Some(p),
        (Mover::Counterparty, Actor::Party(p)) => p == Party::Counterparty,
        _ => false,
    };
    if allowed {
        Ok(to)
    } else if matches!((mover, actor), (Mover::Turn, Actor::Party(_))) {
        Err(Refused::NotYourTurn)
    } else {
        Err(Refused::InvalidTransition { from: from.as_str(), to: Some(to.as_str()) })
    }
}

/// What happens to a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TradeEvent {
    /// An offer was made on it, or one of its offers countered.
    OfferOpened,
    /// Its last open offer closed (rejected, withdrawn, expired).
    OffersClosed,
    /// One of its offers was accepted.
    Accepted,
    /// Agreed within the owner's threshold (or the owner has none).
    Confirm,
    /// Agreed over the owner's threshold.
    NeedApproval,
    /// An approver of the owner approved.
    Approve,
    /// An approver of the owner refused.
    Refuse,
    /// Its owner cancelled it.
    Cancel,
    /// Its `expiresAt` passed.
    Expire,
}

/// The trade machine: from, event, to.
pub const TRADE_TRANSITIONS: &[(TradeStatus, TradeEvent, TradeStatus)] = {
    use TradeEvent::*;
    use TradeStatus::*;
    &[
        (Open, OfferOpened, Negotiating),
        (Negotiating, OfferOpened, Negotiating),
        (Negotiating, OffersClosed, Open),
        (Negotiating, Accepted, Agreed),
        (Agreed, Confirm, Confirmed),
        (Agreed, NeedApproval, PendingApproval),
        (PendingApproval, Approve, Confirmed),
        (PendingApproval, Refuse, Cancelled),
        (Open, Cancel, Cancelled),
        (Negotiating, Cancel, Cancelled),
        (Agreed, Cancel, Cancelled),
        (PendingApproval, Cancel, Cancelled),
        (Open, Expire, Expired),
        (Negotiating, Expire, Expired),
        (Agreed, Expire, Expired),
        (PendingApproval, Expire, Expired),
    ]
};

/// What `event` does to a trade in `from`.
pub fn trade_step(from: TradeStatus, event: TradeEvent) -> Result<TradeStatus, Refused> {
    TRADE_TRANSITIONS
        .iter()
        .find(|(f, e, _)| *f == from && *e == event)
        .map(|&(_, _, to)| to)
        .ok_or(Refused::InvalidTransition { from: from.as_str(), to: None })
}

/// The transition tables as Markdown (for the reference documentation).
pub fn tables_markdown() -> String {
    let mut out = String::from("| trade: from | event | to |\n|---|---|---|\n");
    for (f, e, t) in TRADE_TRANSITIONS {
        out.push_str(&format!("| {} | {e:?} | {} |\n", f.as_str(), t.as_str()));
    }
    out.push_str("\n| offer: from | move | by | to |\n|---|---|---|---|\n");
    for (f, m, who, t) in OFFER_TRANSITIONS {
        let who = match who {
            Mover::Turn => "the party whose turn it is",
            Mover::Counterparty => "the counterparty",
            Mover::Server => "the server",
        };
        out.push_str(&format!("| {} | {m:?} | {who} | {} |\n", f.as_str(), t.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency): the same seed gives
    /// the same sequences, so a failure names its seed and reproduces.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
        fn pick<T: Copy>(&mut self, from: &[T]) -> T {
            from[(self.next() as usize) % from.len()]
        }
    }

    /// A trade with its offers, driven only through the two step functions,
    /// as the handlers do: an accepted offer closes the others (outbid) in
    /// the same change, and the trade follows its offers.
    struct Model {
        trade: TradeStatus,
        offers: Vec<OfferStatus>,
        /// Who moved last on each offer.
        last: Vec<Party>,
        over_threshold: bool,
    }

    impl Model {
        fn open_offers(&self) -> usize {
            self.offers.iter().filter(|o| o.is_open()).count()
        }

        fn make_offer(&mut self) -> Result<(), Refused> {
            if !self.trade.takes_offers() {
                return Err(Refused::InvalidTransition { from: self.trade.as_str(), to: None });
            }
            self.trade = trade_step(self.trade, TradeEvent::OfferOpened)?;
            self.offers.push(OfferStatus::Pending);
            self.last.push(Party::Counterparty);
            Ok(())
        }

        fn negotiate(&mut self, i: usize, mv: OfferMove, actor: Actor) -> Result<(), Refused> {
            let from = self.offers[i];
            if !self.trade.takes_offers() && from.is_open() && mv != OfferMove::Expire {
                return Err(Refused::InvalidTransition { from: self.trade.as_str(), to: None });
            }
            let to = offer_step(from, mv, actor)?;
            if mv == OfferMove::Counter
                && let Actor::Party(p) = actor
            {
                assert_ne!(self.last[i], p, "a party countered its own last move");
                self.last[i] = p;
            }
            let mut trade = self.trade;
            if to == OfferStatus::Accepted {
                trade = trade_step(trade, TradeEvent::Accepted)?;
                let last = if self.over_threshold { TradeEvent::NeedApproval } else { TradeEvent::Confirm };
                trade = trade_step(trade, last)?;
                for (j, o) in self.offers.iter_mut().enumerate() {
                    if j != i && o.is_open() {
                        *o = offer_step(*o, OfferMove::Outbid, Actor::Server).expect("an open offer is outbid");
                    }
                }
            }
            self.offers[i] = to;
            if trade.takes_offers() && self.open_offers() == 0 {
                trade = trade_step(trade, TradeEvent::OffersClosed)?;
            }
            self.trade = trade;
            Ok(())
        }

        fn trade_event(&mut self, e: TradeEvent) -> Result<(), Refused> {
            let to = trade_step(self.trade, e)?;
            self.trade = to;
            if to.is_final() {
                for o in self.offers.iter_mut().filter(|o| o.is_open()) {
                    *o = offer_step(*o, OfferMove::Expire, Actor::Server).expect("an open offer expires");
                }
            }
            Ok(())
        }

        fn check(&self) {
            let accepted = self.offers.iter().filter(|o| **o == OfferStatus::Accepted).count();
            assert!(accepted <= 1, "two offers accepted");
            let agreed = matches!(self.trade, TradeStatus::Confirmed | TradeStatus::PendingApproval);
            if agreed {
                assert_eq!(accepted, 1, "{:?} without an accepted offer", self.trade);
                assert_eq!(self.open_offers(), 0, "an offer open on an agreed trade");
            }
            if self.trade.is_final() || self.trade == TradeStatus::PendingApproval {
                assert_eq!(self.open_offers(), 0, "an offer open on a {:?} trade", self.trade);
            }
            assert_eq!(self.trade == TradeStatus::Negotiating, self.open_offers() > 0, "{:?}", self.trade);
            assert_ne!(self.trade, TradeStatus::Agreed, "agreed is passed through, never left standing");
        }
    }

    #[test]
    fn random_sequences_never_reach_an_illegal_state() {
        let moves = [
            OfferMove::Counter,
            OfferMove::Accept,
            OfferMove::Reject,
            OfferMove::Withdraw,
            OfferMove::Outbid,
            OfferMove::Expire,
        ];
        let actors = [Actor::Party(Party::Owner), Actor::Party(Party::Counterparty), Actor::Server];
        let events = [TradeEvent::Approve, TradeEvent::Refuse, TradeEvent::Cancel, TradeEvent::Expire];
        let mut refusals = 0;
        for seed in 0..5_000u64 {
            let mut rng = Lcg(seed);
            let mut m =
                Model { trade: TradeStatus::Open, offers: Vec::new(), last: Vec::new(), over_threshold: seed % 2 == 0 };
            for _ in 0..(rng.next() % 30) {
                let before: Vec<OfferStatus> = m.offers.clone();
                let trade_before = m.trade;
                let r = match rng.next() % 10 {
                    0..=2 => m.make_offer(),
                    3..=8 if !m.offers.is_empty() => {
                        let i = (rng.next() as usize) % m.offers.len();
                        m.negotiate(i, rng.pick(&moves), rng.pick(&actors))
                    }
                    _ => m.trade_event(rng.pick(&events)),
                };
                if let Err(e) = r {
                    refusals += 1;
                    // A refusal is one of the two documented reasons and changes nothing.
                    assert!(matches!(e, Refused::InvalidTransition { .. } | Refused::NotYourTurn), "seed {seed}");
                    assert_eq!(m.offers, before, "seed {seed}: a refused move changed an offer");
                    assert_eq!(m.trade, trade_before, "seed {seed}: a refused move changed the trade");
                }
                // Final states stay final.
                if trade_before.is_final() {
                    assert_eq!(m.trade, trade_before, "seed {seed}: a final trade changed");
                }
                for (b, a) in before.iter().zip(&m.offers) {
                    if !b.is_open() {
                        assert_eq!(a, b, "seed {seed}: a closed offer changed");
                    }
                }
                m.check();
            }
        }
        assert!(refusals > 1_000, "the sequences also try what is refused");
    }

    #[test]
    fn parties_alternate_and_only_the_counterparty_withdraws() {
        let owner = Actor::Party(Party::Owner);
        let cp = Actor::Party(Party::Counterparty);
        assert_eq!(offer_step(OfferStatus::Pending, OfferMove::Counter, owner), Ok(OfferStatus::Countered));
        assert_eq!(offer_step(OfferStatus::Pending, OfferMove::Counter, cp), Err(Refused::NotYourTurn));
        assert_eq!(offer_step(OfferStatus::Countered, OfferMove::Counter, owner), Err(Refused::NotYourTurn));
        assert_eq!(offer_step(OfferStatus::Countered, OfferMove::Accept, cp), Ok(OfferStatus::Accepted));
        assert_eq!(offer_step(OfferStatus::Countered, OfferMove::Withdraw, cp), Ok(OfferStatus::Withdrawn));
        assert!(matches!(
            offer_step(OfferStatus::Pending, OfferMove::Withdraw, owner),
            Err(Refused::InvalidTransition { .. })
        ));
        assert!(matches!(
            offer_step(OfferStatus::Pending, OfferMove::Outbid, owner),
            Err(Refused::InvalidTransition { .. })
        ));
        for s in OfferStatus::ALL.iter().filter(|s| !s.is_open()) {
            for m in [OfferMove::Counter, OfferMove::Accept, OfferMove::Reject, OfferMove::Withdraw, OfferMove::Expire]
            {
                assert!(offer_step(*s, m, owner).is_err() && offer_step(*s, m, Actor::Server).is_err(), "{s:?} {m:?}");
            }
        }
        for s in TradeStatus::ALL.iter().filter(|s| s.is_final()) {
            assert!(TRADE_TRANSITIONS.iter().all(|(f, _, _)| f != s), "{s:?} is final");
        }
        assert!(tables_markdown().contains("| pending | Counter | the party whose turn it is | countered |"));
    }
}

#[cfg(test)]
mod documented {
    /// ARCHITECTURE.md prints the tables as they are.
    #[test]
    fn architecture_prints_the_transition_tables() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md")).expect("read");
        let tables = super::tables_markdown();
        assert!(doc.contains(&tables), "ARCHITECTURE.md's trade desk tables are stale; they are:\n{tables}");
    }
}
