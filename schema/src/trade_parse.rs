//! `trades.parse`: reads a free-text trade request ("buy 120 t wheat at most
//! 245 EUR/t delivered Rotterdam, until Friday") into a draft of
//! `trades.create` params, saying which words gave which field and which
//! words it did not understand. It has no side effects: [`parse`] is a pure,
//! deterministic function of the text and the current time.
//!
//! The parser is a small tokenizer (words, numbers, symbols, with their byte
//! spans) and a fixed sequence of passes over the tokens: expiry, grade,
//! price, Incoterm and location, side, quantity and unit, commodity. Each pass
//! takes the tokens it understands, so a later pass never reads them again
//! (the "15" of "by 15 Dec" is not a quantity). Vocabulary is a closed
//! English list; a field met twice with different values keeps the first and
//! leaves the second in `unparsed`.
//!
//! Choices where English is vague:
//! - A day means its end, 23:59:59 UTC. "Friday" is the next Friday on or
//!   after today (today's end on a Friday); "next Friday" is strictly after
//!   today. "this week" / "end of the week" is the coming Sunday (weeks run
//!   Monday to Sunday), "next week" the Sunday after it; "end of month" the
//!   last day of this month, "next month" the last day of the next. "within
//!   3 days" / "in 3 days" is the end of the day 3 days after today; "within
//!   24 hours" is exactly 24 hours after `now`. A date without a year is this
//!   year's, or next year's when this year's has passed; an explicit date in
//!   the past goes to `unparsed`.
//! - A price needs a currency or a unit after it ("245 EUR", "245/t"); a
//!   price whose unit differs from the quantity's is left, whole, in
//!   `unparsed`. When only the price names a unit, it is the draft's unit.
//! - A location follows "delivered", "delivery (in|at|to)", an Incoterm, or
//!   "at" / "in" (then only capitalized words): at most five words, which are
//!   not other vocabulary.

use std::borrow::Cow;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, Utc, Weekday};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ts_rs::TS;

use crate::commodities::{Commodity, Currency, Grade, Location, Price, Quantity, Unit};
use crate::procedure;

/// A free-text trade request: 1 to 1,000 characters, trimmed, not only
/// spaces, no control characters other than line breaks and tabs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, TS)]
#[ts(type = "string")]
pub struct TradeText(String);

impl TradeText {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if s.chars().any(|c| c.is_control() && !c.is_whitespace()) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for TradeText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TradeText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for TradeText {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("TradeText")
    }
    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed(concat!(module_path!(), "::TradeText"))
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": 1000 })
    }
}

/// Whether the trader buys or sells (the `side` of `trades.create`).
pub use crate::trades::Side;

/// An Incoterms 2020 rule: who carries the goods, the cost and the risk to
/// where. On the wire, its upper-case code.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
pub enum Incoterm {
    /// Ex works.
    EXW,
    /// Free carrier.
    FCA,
    /// Free alongside ship.
    FAS,
    /// Free on board.
    FOB,
    /// Cost and freight.
    CFR,
    /// Cost, insurance and freight.
    CIF,
    /// Carriage paid to.
    CPT,
    /// Carriage and insurance paid to.
    CIP,
    /// Delivered at place.
    DAP,
    /// Delivered at place unloaded.
    DPU,
    /// Delivered duty paid.
    DDP,
}

/// A field of a [`TradeDraft`], as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DraftField {
    /// [`TradeDraft::side`].
    Side,
    /// [`TradeDraft::commodity`].
    Commodity,
    /// [`TradeDraft::quantity`].
    Quantity,
    /// [`TradeDraft::unit`].
    Unit,
    /// [`TradeDraft::price_limit`].
    PriceLimit,
    /// [`TradeDraft::currency`].
    Currency,
    /// [`TradeDraft::expires_at`].
    ExpiresAt,
    /// [`TradeDraft::location`].
    Location,
    /// [`TradeDraft::grade`].
    Grade,
    /// [`TradeDraft::incoterm`].
    Incoterm,
}

/// The params of `trades.create` that a text gave; each is absent when the
/// text did not give it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TradeDraft {
    /// Buy or sell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub side: Option<Side>,
    /// What is traded, lower-cased, by its usual name (`"corn"` for maize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub commodity: Option<Commodity>,
    /// How much, in `unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub quantity: Option<Quantity>,
    /// The unit of the quantity and of the price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub unit: Option<Unit>,
    /// The worst acceptable price per unit, in `currency`: the most a buyer
    /// pays, the least a seller takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub price_limit: Option<Price>,
    /// The currency of the price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub currency: Option<Currency>,
    /// When the request lapses; never before the time of parsing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Where the goods are delivered (or handed over, under the Incoterm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub location: Option<Location>,
    /// The quality grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub grade: Option<Grade>,
    /// The Incoterms rule of delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub incoterm: Option<Incoterm>,
}

/// One field the parser understood, and the words that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Understood {
    /// The field of the draft.
    pub field: DraftField,
    /// The exact words of the input that gave it (`"at most 245 EUR/t"`).
    pub text: String,
}

/// Params of `trades.parse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParseParams {
    /// The request, in English.
    pub text: TradeText,
}

/// What `trades.parse` read in a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParseResult {
    /// The fields understood, to fill a `trades.create` form.
    pub draft: TradeDraft,
    /// Which words gave which field, in the order of the text.
    pub understood: Vec<Understood>,
    /// The words not understood (filler words such as "of", "the", "please"
    /// and punctuation left out), in the order of the text; a phrase that
    /// was understood but could not be used (a price per another unit, a
    /// date in the past, a quantity of 0) is one entry.
    pub unparsed: Vec<String>,
}

procedure! {
    /// Reads a free-text trade request ("buy 120 t wheat at most 245 EUR/t delivered Rotterdam, until Friday") into a draft of `trades.create` params, the words that gave each field and the words not understood; no side effects.
    Parse {
        method: "trades.parse",
        kind: Query,
        access: User,
        params: ParseParams,
        output: ParseResult,
        reasons: crate::error::NoReason,
        example: ParseParams {
            text: TradeText::parse("buy 120 t wheat grade 2 at most 245 EUR/t delivered Rotterdam, until Friday")
                .expect("valid"),
        },
    }
}

/// Reads `text` as a trade request, relative dates counted from `now`.
/// Deterministic; never panics, whatever the text.
pub fn parse(text: &str, now: DateTime<Utc>) -> ParseResult {
    let mut p = Parser::new(text, now);
    p.expiry_pass();
    p.grade_pass();
    p.price_pass();
    p.location_pass();
    p.side_pass();
    p.quantity_pass();
    p.commodity_pass();
    p.resolve_prices();
    p.finish()
}

// ---------------------------------------------------------------------------
// Vocabulary. Phrases are lower-cased tokens; a symbol is a token of its own.

type Table<T> = &'static [(&'static [&'static str], T)];

const SIDES: Table<Side> = &[
    (&["want", "to", "buy"], Side::Buy),
    (&["wants", "to", "buy"], Side::Buy),
    (&["need", "to", "buy"], Side::Buy),
    (&["looking", "to", "buy"], Side::Buy),
    (&["looking", "for"], Side::Buy),
    (&["want", "to", "sell"], Side::Sell),
    (&["wants", "to", "sell"], Side::Sell),
    (&["need", "to", "sell"], Side::Sell),
    (&["looking", "to", "sell"], Side::Sell),
    (&["buy"], Side::Buy),
    (&["buying"], Side::Buy),
    (&["buyer"], Side::Buy),
    (&["bid"], Side::Buy),
    (&["bidding"], Side::Buy),
    (&["want"], Side::Buy),
    (&["wanted"], Side::Buy),
    (&["wants"], Side::Buy),
    (&["need"], Side::Buy),
    (&["needs"], Side::Buy),
    (&["needed"], Side::Buy),
    (&["purchase"], Side::Buy),
    (&["purchasing"], Side::Buy),
    (&["wtb"], Side::Buy),
    (&["sell"], Side::Sell),
    (&["selling"], Side::Sell),
    (&["seller"], Side::Sell),
    (&["offer"], Side::Sell),
    (&["offers"], Side::Sell),
    (&["offering"], Side::Sell),
    (&["offered"], Side::Sell),
    (&["have"], Side::Sell),
    (&["has"], Side::Sell),
    (&["wts"], Side::Sell),
];

const UNITS: Table<Unit> = &[
    (&["t"], Unit::Tonne),
    (&["tonne"], Unit::Tonne),
    (&["tonnes"], Unit::Tonne),
    (&["ton"], Unit::Tonne),
    (&["tons"], Unit::Tonne),
    (&["mt"], Unit::Tonne),
    (&["mts"], Unit::Tonne),
    (&["metric", "ton"], Unit::Tonne),
    (&["metric", "tons"], Unit::Tonne),
    (&["metric", "tonne"], Unit::Tonne),
    (&["metric", "tonnes"], Unit::Tonne),
    (&["kg"], Unit::Kilogram),
    (&["kgs"], Unit::Kilogram),
    (&["kilo"], Unit::Kilogram),
    (&["kilos"], Unit::Kilogram),
    (&["kilogram"], Unit::Kilogram),
    (&["kilograms"], Unit::Kilogram),
    (&["kilogramme"], Unit::Kilogram),
    (&["kilogrammes"], Unit::Kilogram),
    (&["lb"], Unit::Pound),
    (&["lbs"], Unit::Pound),
    (&["pound"], Unit::Pound),
    (&["pounds"], Unit::Pound),
    (&["bu"], Unit::Bushel),
    (&["bushel"], Unit::Bushel),
    (&["bushels"], Unit::Bushel),
    (&["bbl"], Unit::Barrel),
    (&["bbls"], Unit::Barrel),
    (&["barrel"], Unit::Barrel),
    (&["barrels"], Unit::Barrel),
    (&["m3"], Unit::CubicMetre),
    (&["m³"], Unit::CubicMetre),
    (&["cbm"], Unit::CubicMetre),
    (&["cubic", "metre"], Unit::CubicMetre),
    (&["cubic", "metres"], Unit::CubicMetre),
    (&["cubic", "meter"], Unit::CubicMetre),
    (&["cubic", "meters"], Unit::CubicMetre),
    (&["l"], Unit::Litre),
    (&["litre"], Unit::Litre),
    (&["litres"], Unit::Litre),
    (&["liter"], Unit::Litre),
    (&["liters"], Unit::Litre),
    (&["ozt"], Unit::TroyOunce),
    (&["troy", "ounce"], Unit::TroyOunce),
    (&["troy", "ounces"], Unit::TroyOunce),
    (&["troy", "oz"], Unit::TroyOunce),
];

/// Commodity names and their canonical name (spelling variants and synonyms
/// of one product map to one name, so filters match).
const COMMODITIES: Table<&str> = &[
    (&["wheat"], "wheat"),
    (&["durum", "wheat"], "durum wheat"),
    (&["milling", "wheat"], "milling wheat"),
    (&["feed", "wheat"], "feed wheat"),
    (&["corn"], "corn"),
    (&["maize"], "corn"),
    (&["soybeans"], "soybeans"),
    (&["soybean"], "soybeans"),
    (&["soya", "beans"], "soybeans"),
    (&["soy", "beans"], "soybeans"),
    (&["soyabeans"], "soybeans"),
    (&["soybean", "meal"], "soybean meal"),
    (&["soybean", "oil"], "soybean oil"),
    (&["barley"], "barley"),
    (&["oats"], "oats"),
    (&["sorghum"], "sorghum"),
    (&["rice"], "rice"),
    (&["sugar"], "sugar"),
    (&["raw", "sugar"], "raw sugar"),
    (&["white", "sugar"], "white sugar"),
    (&["coffee"], "coffee"),
    (&["cocoa"], "cocoa"),
    (&["cotton"], "cotton"),
    (&["rubber"], "rubber"),
    (&["copper"], "copper"),
    (&["aluminium"], "aluminium"),
    (&["aluminum"], "aluminium"),
    (&["zinc"], "zinc"),
    (&["nickel"], "nickel"),
    (&["iron", "ore"], "iron ore"),
    (&["steel"], "steel"),
    (&["gold"], "gold"),
    (&["silver"], "silver"),
    (&["platinum"], "platinum"),
    (&["palladium"], "palladium"),
    (&["crude", "oil"], "crude oil"),
    (&["crude"], "crude oil"),
    (&["diesel"], "diesel"),
    (&["gasoline"], "gasoline"),
    (&["petrol"], "gasoline"),
    (&["jet", "fuel"], "jet fuel"),
    (&["fuel", "oil"], "fuel oil"),
    (&["natural", "gas"], "natural gas"),
    (&["lng"], "lng"),
    (&["coal"], "coal"),
    (&["urea"], "urea"),
    (&["ammonia"], "ammonia"),
    (&["potash"], "potash"),
    (&["canola"], "canola"),
    (&["rapeseed"], "rapeseed"),
    (&["sunflower", "oil"], "sunflower oil"),
    (&["sunflower", "seeds"], "sunflower seeds"),
    (&["palm", "oil"], "palm oil"),
];

const INCOTERMS: Table<Incoterm> = &[
    (&["exw"], Incoterm::EXW),
    (&["ex", "works"], Incoterm::EXW),
    (&["ex", "-", "works"], Incoterm::EXW),
    (&["fca"], Incoterm::FCA),
    (&["free", "carrier"], Incoterm::FCA),
    (&["fas"], Incoterm::FAS),
    (&["free", "alongside", "ship"], Incoterm::FAS),
    (&["fob"], Incoterm::FOB),
    (&["free", "on", "board"], Incoterm::FOB),
    (&["cfr"], Incoterm::CFR),
    (&["cost", "and", "freight"], Incoterm::CFR),
    (&["cif"], Incoterm::CIF),
    (&["cost", "insurance", "and", "freight"], Incoterm::CIF),
    (&["cost", ",", "insurance", "and", "freight"], Incoterm::CIF),
    (&["cpt"], Incoterm::CPT),
    (&["carriage", "paid", "to"], Incoterm::CPT),
    (&["cip"], Incoterm::CIP),
    (&["dap"], Incoterm::DAP),
    (&["delivered", "at", "place"], Incoterm::DAP),
    (&["dpu"], Incoterm::DPU),
    (&["ddp"], Incoterm::DDP),
    (&["delivered", "duty", "paid"], Incoterm::DDP),
];

/// Words before a location: `true` when the location may be lower-case.
const LOCATION_TRIGGERS: Table<bool> = &[
    (&["delivered"], true),
    (&["delivered", "to"], true),
    (&["delivered", "in"], true),
    (&["delivered", "at"], true),
    (&["delivery"], true),
    (&["delivery", "to"], true),
    (&["delivery", "in"], true),
    (&["delivery", "at"], true),
    (&["deliver", "to"], true),
    (&["at"], false),
    (&["in"], false),
];

/// Words before a price limit.
const PRICE_QUALIFIERS: Table<()> = &[
    (&["at", "most"], ()),
    (&["at", "least"], ()),
    (&["up", "to"], ()),
    (&["max"], ()),
    (&["max", "."], ()),
    (&["maximum"], ()),
    (&["min"], ()),
    (&["min", "."], ()),
    (&["minimum"], ()),
    (&["below"], ()),
    (&["under"], ()),
    (&["above"], ()),
    (&["over"], ()),
    (&["not", "more", "than"], ()),
    (&["no", "more", "than"], ()),
    (&["not", "less", "than"], ()),
    (&["no", "less", "than"], ()),
    (&["less", "than"], ()),
    (&["more", "than"], ()),
    (&["at"], ()),
    (&["@"], ()),
    (&["for"], ()),
    (&["price"], ()),
    (&["limit"], ()),
];

/// Currencies written before the number.
const CURRENCY_PREFIXES: Table<Currency> = &[
    (&["€"], Currency::EUR),
    (&["$"], Currency::USD),
    (&["us", "$"], Currency::USD),
    (&["£"], Currency::GBP),
    (&["¥"], Currency::JPY),
];

/// Currencies written after the number (codes are read apart).
const CURRENCY_SUFFIXES: Table<Currency> = &[
    (&["€"], Currency::EUR),
    (&["$"], Currency::USD),
    (&["£"], Currency::GBP),
    (&["¥"], Currency::JPY),
    (&["euro"], Currency::EUR),
    (&["euros"], Currency::EUR),
    (&["dollar"], Currency::USD),
    (&["dollars"], Currency::USD),
    (&["us", "dollars"], Currency::USD),
    (&["sterling"], Currency::GBP),
    (&["pound", "sterling"], Currency::GBP),
    (&["pounds", "sterling"], Currency::GBP),
    (&["yen"], Currency::JPY),
];

/// Currency codes that are also English words: only in upper case.
const CODE_WORDS: &[&str] = &["all", "top", "try", "cup", "mad", "pen", "mop", "bob", "gel", "sos", "lak", "bam"];

/// Words between a price and its unit.
const PER: Table<()> = &[(&["/"], ()), (&["per"], ()), (&["a"], ()), (&["an"], ())];

const MULTIPLIERS: Table<u64> = &[
    (&["k"], 1_000),
    (&["thousand"], 1_000),
    (&["million"], 1_000_000),
    (&["mn"], 1_000_000),
    (&["mln"], 1_000_000),
    (&["billion"], 1_000_000_000),
    (&["bn"], 1_000_000_000),
];

const SMALL_NUMBERS: Table<u64> = &[
    (&["zero"], 0),
    (&["one"], 1),
    (&["two"], 2),
    (&["three"], 3),
    (&["four"], 4),
    (&["five"], 5),
    (&["six"], 6),
    (&["seven"], 7),
    (&["eight"], 8),
    (&["nine"], 9),
    (&["ten"], 10),
    (&["eleven"], 11),
    (&["twelve"], 12),
    (&["thirteen"], 13),
    (&["fourteen"], 14),
    (&["fifteen"], 15),
    (&["sixteen"], 16),
    (&["seventeen"], 17),
    (&["eighteen"], 18),
    (&["nineteen"], 19),
    (&["twenty"], 20),
    (&["thirty"], 30),
    (&["forty"], 40),
    (&["fifty"], 50),
    (&["sixty"], 60),
    (&["seventy"], 70),
    (&["eighty"], 80),
    (&["ninety"], 90),
];

const SCALES: Table<u64> = &[(&["thousand"], 1_000), (&["million"], 1_000_000), (&["billion"], 1_000_000_000)];

/// Words before an expiry.
const EXPIRY_TRIGGERS: Table<()> = &[
    (&["until"], ()),
    (&["till"], ()),
    (&["til"], ()),
    (&["by"], ()),
    (&["expires"], ()),
    (&["expiring"], ()),
    (&["valid", "until"], ()),
    (&["valid", "till"], ()),
    (&["good", "until"], ()),
    (&["good", "till"], ()),
    (&["open", "until"], ()),
];

/// Words before a span of time ("within 3 days").
const WITHIN: Table<()> = &[(&["within"], ()), (&["in"], ())];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Hour,
    Day,
    Week,
}

const SPANS: Table<Span> = &[
    (&["hour"], Span::Hour),
    (&["hours"], Span::Hour),
    (&["day"], Span::Day),
    (&["days"], Span::Day),
    (&["week"], Span::Week),
    (&["weeks"], Span::Week),
];

/// A day named relative to today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Today,
    Tomorrow,
    EndOfWeek,
    NextWeek,
    EndOfMonth,
    NextMonth,
}

const NAMED_DAYS: Table<Named> = &[
    (&["today"], Named::Today),
    (&["tonight"], Named::Today),
    (&["eod"], Named::Today),
    (&["end", "of", "day"], Named::Today),
    (&["end", "of", "the", "day"], Named::Today),
    (&["tomorrow"], Named::Tomorrow),
    (&["this", "week"], Named::EndOfWeek),
    (&["end", "of", "week"], Named::EndOfWeek),
    (&["end", "of", "the", "week"], Named::EndOfWeek),
    (&["end", "of", "this", "week"], Named::EndOfWeek),
    (&["the", "end", "of", "the", "week"], Named::EndOfWeek),
    (&["next", "week"], Named::NextWeek),
    (&["end", "of", "next", "week"], Named::NextWeek),
    (&["the", "end", "of", "next", "week"], Named::NextWeek),
    (&["eom"], Named::EndOfMonth),
    (&["month", "end"], Named::EndOfMonth),
    (&["month", "-", "end"], Named::EndOfMonth),
    (&["end", "of", "month"], Named::EndOfMonth),
    (&["end", "of", "the", "month"], Named::EndOfMonth),
    (&["end", "of", "this", "month"], Named::EndOfMonth),
    (&["the", "end", "of", "the", "month"], Named::EndOfMonth),
    (&["the", "end", "of", "month"], Named::EndOfMonth),
    (&["this", "month"], Named::EndOfMonth),
    (&["next", "month"], Named::NextMonth),
    (&["end", "of", "next", "month"], Named::NextMonth),
    (&["the", "end", "of", "next", "month"], Named::NextMonth),
];

const WEEKDAYS: Table<Weekday> = &[
    (&["monday"], Weekday::Mon),
    (&["mon"], Weekday::Mon),
    (&["tuesday"], Weekday::Tue),
    (&["tue"], Weekday::Tue),
    (&["tues"], Weekday::Tue),
    (&["wednesday"], Weekday::Wed),
    (&["wed"], Weekday::Wed),
    (&["thursday"], Weekday::Thu),
    (&["thu"], Weekday::Thu),
    (&["thur"], Weekday::Thu),
    (&["thurs"], Weekday::Thu),
    (&["friday"], Weekday::Fri),
    (&["fri"], Weekday::Fri),
    (&["saturday"], Weekday::Sat),
    (&["sat"], Weekday::Sat),
    (&["sunday"], Weekday::Sun),
    (&["sun"], Weekday::Sun),
];

const MONTHS: Table<u32> = &[
    (&["january"], 1),
    (&["jan"], 1),
    (&["february"], 2),
    (&["feb"], 2),
    (&["march"], 3),
    (&["mar"], 3),
    (&["april"], 4),
    (&["apr"], 4),
    (&["may"], 5),
    (&["june"], 6),
    (&["jun"], 6),
    (&["july"], 7),
    (&["jul"], 7),
    (&["august"], 8),
    (&["aug"], 8),
    (&["september"], 9),
    (&["sep"], 9),
    (&["sept"], 9),
    (&["october"], 10),
    (&["oct"], 10),
    (&["november"], 11),
    (&["nov"], 11),
    (&["december"], 12),
    (&["dec"], 12),
];

const ORDINAL_SUFFIXES: &[&str] = &["st", "nd", "rd", "th"];

/// Words and marks that carry no field and are never reported as unparsed.
const FILLER: &[&str] = &[
    "of", "a", "an", "the", "and", "please", "pls", "plz", "to", "for", "at", "in", "on", "with", "we", "i", "would",
    "like", ",", ".", ";", ":", "!", "?", "-", "(", ")",
];

/// Other words of the vocabulary, so that no location swallows them.
const OTHER_KEYWORDS: &[&str] = &["grade", "no", "per", "next", "within", "half", "most", "least"];

fn in_table<T>(word: &str, table: Table<T>) -> bool {
    table.iter().any(|(words, _)| words.contains(&word))
}

fn is_keyword(word: &str) -> bool {
    FILLER.contains(&word)
        || OTHER_KEYWORDS.contains(&word)
        || in_table(word, SIDES)
        || in_table(word, UNITS)
        || in_table(word, COMMODITIES)
        || in_table(word, INCOTERMS)
        || in_table(word, LOCATION_TRIGGERS)
        || in_table(word, PRICE_QUALIFIERS)
        || in_table(word, CURRENCY_SUFFIXES)
        || in_table(word, EXPIRY_TRIGGERS)
        || in_table(word, NAMED_DAYS)
        || in_table(word, WEEKDAYS)
        || in_table(word, MONTHS)
        || in_table(word, SPANS)
        || in_table(word, SMALL_NUMBERS)
        || in_table(word, MULTIPLIERS)
        || (word.len() == 3 && Currency::from_code(&word.to_ascii_uppercase()).is_some())
}

// ---------------------------------------------------------------------------
// Tokens.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// Letters, then letters or digits (`wheat`, `m3`).
    Word,
    /// Digits, with `.` or `,` between digits (`1,250.50`).
    Number,
    /// Any other single character (`€`, `/`, `,`).
    Symbol,
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    lower: String,
    /// Byte span in the text.
    start: usize,
    end: usize,
    /// No space before it (`t` in `120t`).
    glued: bool,
}

fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut tokens = Vec::new();
    let mut glued = false;
    let mut i = 0;
    while let Some(&(start, c)) = chars.get(i) {
        if c.is_whitespace() {
            glued = false;
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let kind = if c.is_ascii_digit() {
            while let Some(&(_, d)) = chars.get(j) {
                let digit_follows = chars.get(j + 1).is_some_and(|&(_, n)| n.is_ascii_digit());
                if d.is_ascii_digit() {
                    j += 1;
                } else if (d == '.' || d == ',') && digit_follows {
                    j += 2;
                } else {
                    break;
                }
            }
            TokenKind::Number
        } else if c.is_alphabetic() {
            while chars.get(j).is_some_and(|&(_, d)| d.is_alphanumeric()) {
                j += 1;
            }
            TokenKind::Word
        } else {
            TokenKind::Symbol
        };
        let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
        tokens.push(Token { kind, lower: text[start..end].to_lowercase(), start, end, glued });
        glued = true;
        i = j;
    }
    tokens
}

/// A number token's value: digits, at most one point, commas only between
/// groups of three (`1,250.50`).
fn decimal_of(raw: &str) -> Option<Decimal> {
    let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let groups: Vec<&str> = int.split(',').collect();
    let grouped = groups.len() == 1
        || (!groups[0].is_empty() && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3));
    if !grouped || !groups.iter().all(|g| digits(g)) || !digits(frac) || raw.len() > 40 {
        return None;
    }
    Decimal::from_str(&raw.replace(',', "")).ok()
}

/// A group of three digits after a space (`200` in `1 200`), with an
/// optional fraction on the last.
fn is_group_of_three(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    int.len() == 3 && int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())
}

fn end_of(day: NaiveDate) -> Option<DateTime<Utc>> {
    day.and_hms_opt(23, 59, 59).map(|t| t.and_utc())
}

fn last_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 { (year.checked_add(1)?, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

/// Days from `today` to the next `day`, 0 when today is that day.
fn days_until(today: NaiveDate, day: Weekday) -> u64 {
    u64::from((7 + day.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7)
}

/// A price read before the quantity, kept until the quantity's unit is known.
#[derive(Debug, Clone)]
struct PriceCandidate {
    from: usize,
    to: usize,
    value: Decimal,
    currency: Option<(Currency, usize, usize)>,
    per: Option<(Unit, usize, usize)>,
}

/// What an expiry phrase says: a time, or a day that has passed.
type Expiry = Option<DateTime<Utc>>;

struct Parser<'a> {
    text: &'a str,
    now: DateTime<Utc>,
    toks: Vec<Token>,
    used: Vec<bool>,
    draft: TradeDraft,
    understood: Vec<(usize, Understood)>,
    prices: Vec<PriceCandidate>,
    /// Token ranges understood but not usable: each one `unparsed` entry.
    rejected: Vec<(usize, usize)>,
}

/// Sets a field met for the first time; `false` when it already holds
/// another value.
fn accept<T: PartialEq>(slot: &mut Option<T>, value: T) -> bool {
    match slot {
        None => {
            *slot = Some(value);
            true
        }
        Some(v) => *v == value,
    }
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, now: DateTime<Utc>) -> Self {
        let toks = tokenize(text);
        let used = vec![false; toks.len()];
        Self {
            text,
            now,
            toks,
            used,
            draft: TradeDraft::default(),
            understood: Vec::new(),
            prices: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// The token at `i`, if there is one and no pass took it.
    fn free(&self, i: usize) -> Option<&Token> {
        self.toks.get(i).filter(|_| !self.used.get(i).copied().unwrap_or(true))
    }

    fn low(&self, i: usize) -> Option<&str> {
        self.free(i).map(|t| t.lower.as_str())
    }

    /// The end of `words` when they are the free tokens from `i`.
    fn phrase(&self, i: usize, words: &[&str]) -> Option<usize> {
        words.iter().enumerate().all(|(k, w)| self.low(i + k) == Some(*w)).then_some(i + words.len())
    }

    /// The longest phrase of `table` at `i`, its value and its end.
    fn longest<T: Copy>(&self, i: usize, table: Table<T>) -> Option<(T, usize)> {
        let mut best: Option<(T, usize)> = None;
        for (words, value) in table {
            if let Some(end) = self.phrase(i, words)
                && best.is_none_or(|(_, e)| end > e)
            {
                best = Some((*value, end));
            }
        }
        best
    }

    /// The text of tokens `from..to`, as written.
    fn span(&self, from: usize, to: usize) -> &'a str {
        match (self.toks.get(from), to.checked_sub(1).and_then(|l| self.toks.get(l))) {
            (Some(a), Some(b)) if from < to => &self.text[a.start..b.end],
            _ => "",
        }
    }

    fn mark(&mut self, from: usize, to: usize) {
        for u in self.used.iter_mut().take(to).skip(from) {
            *u = true;
        }
    }

    /// Takes tokens `from..to` as the words that gave `field`.
    fn take(&mut self, from: usize, to: usize, field: DraftField) {
        self.mark(from, to);
        let start = self.toks.get(from).map_or(0, |t| t.start);
        let text = self.span(from, to).to_owned();
        self.understood.push((start, Understood { field, text }));
    }

    /// Takes tokens `from..to` as one phrase that could not be used.
    fn reject(&mut self, from: usize, to: usize) {
        self.mark(from, to);
        self.rejected.push((from, to));
    }

    // --- numbers -----------------------------------------------------------

    /// A number in digits (`120`, `1,200`, `1 200`, `2.5`), with a
    /// multiplier (`1.2k`, `2 million`).
    fn digits(&self, i: usize) -> Option<(Decimal, usize)> {
        let t = self.free(i).filter(|t| t.kind == TokenKind::Number)?;
        let mut raw = t.lower.clone();
        let mut j = i + 1;
        if t.lower.len() <= 3 && t.lower.bytes().all(|b| b.is_ascii_digit()) {
            while let Some(n) = self.free(j).filter(|n| n.kind == TokenKind::Number && !n.glued) {
                if !is_group_of_three(&n.lower) {
                    break;
                }
                raw.push_str(&n.lower);
                j += 1;
                if n.lower.contains('.') {
                    break;
                }
            }
        }
        let mut value = decimal_of(&raw)?;
        if let Some((m, k)) = self.longest(j, MULTIPLIERS) {
            value = value.checked_mul(Decimal::from(m))?;
            j = k;
        }
        Some((value, j))
    }

    /// A number in words (`one hundred twenty`, `twelve thousand`, `a
    /// thousand`, `twenty-five`).
    fn number_words(&self, i: usize) -> Option<(Decimal, usize)> {
        let (mut total, mut current, mut seen, mut end) = (0u64, 0u64, false, i);
        let mut j = i;
        if matches!(self.low(i), Some("a" | "an"))
            && (self.phrase(i + 1, &["hundred"]).is_some() || self.longest(i + 1, SCALES).is_some())
        {
            j += 1;
        }
        loop {
            if let Some((n, k)) = self.longest(j, SMALL_NUMBERS) {
                current = current.checked_add(n)?;
                (seen, j, end) = (true, k, k);
            } else if let Some(k) = self.phrase(j, &["hundred"]) {
                current = current.max(1).checked_mul(100)?;
                (seen, j, end) = (true, k, k);
            } else if let Some((scale, k)) = self.longest(j, SCALES) {
                total = total.checked_add(current.max(1).checked_mul(scale)?)?;
                current = 0;
                (seen, j, end) = (true, k, k);
            } else if seen && matches!(self.low(j), Some("and" | "-")) {
                j += 1;
            } else {
                break;
            }
        }
        if !seen {
            return None;
        }
        total.checked_add(current).map(|n| (Decimal::from(n), end))
    }

    /// Any quantity number: digits, words, or "half (a)".
    fn number(&self, i: usize) -> Option<(Decimal, usize)> {
        if self.low(i) == Some("half") {
            let end = if matches!(self.low(i + 1), Some("a" | "an")) { i + 2 } else { i + 1 };
            return Some((Decimal::new(5, 1), end));
        }
        self.digits(i).or_else(|| self.number_words(i))
    }

    // --- expiry ------------------------------------------------------------

    fn expiry_pass(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            match self.expiry_at(i) {
                Some((Some(at), end)) => {
                    if accept(&mut self.draft.expires_at, at) {
                        self.take(i, end, DraftField::ExpiresAt);
                    }
                    i = end;
                }
                Some((None, end)) => {
                    self.reject(i, end);
                    i = end;
                }
                None => i += 1,
            }
        }
    }

    fn expiry_at(&self, i: usize) -> Option<(Expiry, usize)> {
        if let Some((_, k)) = self.longest(i, WITHIN)
            && let Some(found) = self.relative(k)
        {
            return Some(found);
        }
        let (start, standalone) = match self.longest(i, EXPIRY_TRIGGERS) {
            Some((_, k)) => (k, false),
            None => (i, true),
        };
        let (day, end) = self.day_at(start, standalone)?;
        let at = end_of(day).filter(|at| *at >= self.now);
        Some((at, end))
    }

    /// "3 days", "two weeks", "a week", "24 hours".
    fn relative(&self, i: usize) -> Option<(Expiry, usize)> {
        let (n, j) = if matches!(self.low(i), Some("a" | "an")) {
            (Decimal::ONE, i + 1)
        } else {
            self.digits(i).or_else(|| self.number_words(i))?
        };
        let (span, end) = self.longest(j, SPANS)?;
        let n = if n.fract().is_zero() { n.to_u64()? } else { return None };
        let today = self.now.date_naive();
        let at = match span {
            Span::Hour if n <= 24 * 3660 => self.now.checked_add_signed(TimeDelta::try_hours(i64::try_from(n).ok()?)?),
            Span::Day if n <= 3660 => today.checked_add_days(Days::new(n)).and_then(end_of),
            Span::Week if n <= 520 => today.checked_add_days(Days::new(n * 7)).and_then(end_of),
            _ => return None,
        };
        Some((Some(at?), end))
    }

    /// A day: named ("tomorrow"), a weekday, or a date. Without a trigger
    /// word before it only "today" and "tomorrow" count ("delivery next
    /// week" says when to deliver, not when the request lapses).
    fn day_at(&self, i: usize, standalone: bool) -> Option<(NaiveDate, usize)> {
        let today = self.now.date_naive();
        if let Some((named, end)) = self.longest(i, NAMED_DAYS)
            && (!standalone || matches!(named, Named::Today | Named::Tomorrow))
        {
            let sunday = today.checked_add_days(Days::new(days_until(today, Weekday::Sun)));
            let day = match named {
                Named::Today => Some(today),
                Named::Tomorrow => today.succ_opt(),
                Named::EndOfWeek => sunday,
                Named::NextWeek => sunday.and_then(|s| s.checked_add_days(Days::new(7))),
                Named::EndOfMonth => last_of_month(today.year(), today.month()),
                Named::NextMonth => last_of_month(today.year(), today.month())
                    .and_then(|d| d.succ_opt())
                    .and_then(|first| last_of_month(first.year(), first.month())),
            };
            return day.map(|d| (d, end));
        }
        if standalone {
            return None;
        }
        let (next, j) = match self.phrase(i, &["next"]) {
            Some(k) => (true, k),
            None => (false, i),
        };
        if let Some((weekday, end)) = self.longest(j, WEEKDAYS) {
            let mut days = days_until(today, weekday);
            if next && days == 0 {
                days = 7;
            }
            return today.checked_add_days(Days::new(days)).map(|d| (d, end));
        }
        self.calendar_day(i)
    }

    /// "2026-12-15", "15 Dec", "15th of December 2026", "December 15".
    fn calendar_day(&self, i: usize) -> Option<(NaiveDate, usize)> {
        if let Some(found) = self.iso_date(i) {
            return Some(found);
        }
        if let Some((day, j)) = self.day_number(i) {
            let j = self.phrase(j, &["of"]).unwrap_or(j);
            let (month, k) = self.longest(j, MONTHS)?;
            return self.with_year(day, month, k);
        }
        let (month, j) = self.longest(i, MONTHS)?;
        let (day, k) = self.day_number(j)?;
        self.with_year(day, month, k)
    }

    fn iso_date(&self, i: usize) -> Option<(NaiveDate, usize)> {
        let part = |k: usize, len: std::ops::RangeInclusive<usize>| {
            self.free(k)
                .filter(|t| t.kind == TokenKind::Number && len.contains(&t.lower.len()) && (k == i || t.glued))
                .filter(|t| t.lower.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.lower.parse::<u32>().ok())
        };
        let dash = |k: usize| self.free(k).is_some_and(|t| t.lower == "-" && t.glued);
        let year = i32::try_from(part(i, 4..=4)?).ok()?;
        if !(dash(i + 1) && dash(i + 3)) {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year, part(i + 2, 1..=2)?, part(i + 4, 1..=2)?)?;
        Some((date, i + 5))
    }

    /// A day of the month, with an ordinal suffix (`15`, `15th`).
    fn day_number(&self, i: usize) -> Option<(u32, usize)> {
        let t = self.free(i).filter(|t| t.kind == TokenKind::Number && t.lower.len() <= 2)?;
        let day = t.lower.parse::<u32>().ok()?;
        let suffix = self.free(i + 1).is_some_and(|s| s.glued && ORDINAL_SUFFIXES.contains(&s.lower.as_str()));
        Some((day, if suffix { i + 2 } else { i + 1 }))
    }

    /// The date of `day` and `month` in the year written next, or else this
    /// year's if it has not passed, else next year's.
    fn with_year(&self, day: u32, month: u32, i: usize) -> Option<(NaiveDate, usize)> {
        let year_at = |k: usize| {
            self.free(k)
                .filter(|t| t.kind == TokenKind::Number && t.lower.len() == 4)
                .and_then(|t| t.lower.parse::<i32>().ok())
        };
        let comma = self.phrase(i, &[","]).unwrap_or(i);
        if let Some(year) = year_at(comma) {
            return NaiveDate::from_ymd_opt(year, month, day).map(|d| (d, comma + 1));
        }
        let this_year = self.now.year();
        [this_year, this_year.checked_add(1)?]
            .into_iter()
            .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
            .find(|d| end_of(*d).is_some_and(|at| at >= self.now))
            .map(|d| (d, i))
    }

    // --- grade -------------------------------------------------------------

    fn grade_pass(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            let found = if let Some(k) = self.phrase(i, &["grade"]) {
                self.numbered(k).map(|(from, to)| (from, to, to)).or_else(|| {
                    // A keyword written in capitals is a grade ("grade A").
                    self.free(k)
                        .filter(|t| {
                            let written = &self.text[t.start..t.end];
                            t.kind == TokenKind::Number
                                || (t.kind == TokenKind::Word
                                    && (!is_keyword(&t.lower) || !written.chars().any(char::is_lowercase)))
                        })
                        .map(|_| (k, k + 1, k + 1))
                })
            } else {
                self.numbered(i).map(|(from, to)| (from, to, to))
            };
            match found {
                Some((value_from, value_to, end)) => {
                    if let Ok(g) = Grade::parse(self.span(value_from, value_to))
                        && accept(&mut self.draft.grade, g)
                    {
                        self.take(i, end, DraftField::Grade);
                    }
                    i = end;
                }
                None => i += 1,
            }
        }
    }

    /// "No. 2", "no 2": the value is the words as written.
    fn numbered(&self, i: usize) -> Option<(usize, usize)> {
        let k = self.phrase(i, &["no"])?;
        let k = self.phrase(k, &["."]).unwrap_or(k);
        self.free(k).filter(|t| t.kind == TokenKind::Number).map(|_| (i, k + 1))
    }

    // --- price -------------------------------------------------------------

    fn price_pass(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            match self.price_at(i) {
                Some(p) => {
                    let to = p.to;
                    self.mark(i, to);
                    self.prices.push(p);
                    i = to;
                }
                None => i += 1,
            }
        }
    }

    fn currency_code(&self, i: usize) -> Option<(Currency, usize)> {
        let t = self.free(i).filter(|t| t.kind == TokenKind::Word && t.lower.len() == 3)?;
        let written = &self.text[t.start..t.end];
        if CODE_WORDS.contains(&t.lower.as_str()) && written != written.to_ascii_uppercase() {
            return None;
        }
        Currency::from_code(&t.lower.to_ascii_uppercase()).map(|c| (c, i + 1))
    }

    /// `[qualifier] [€|$|code] number [€|code|euros] [/|per|a unit]`, with a
    /// currency or a unit.
    fn price_at(&self, i: usize) -> Option<PriceCandidate> {
        let mut j = self.longest(i, PRICE_QUALIFIERS).map_or(i, |(_, k)| k);
        let mut currency = None;
        if let Some((c, k)) = self.longest(j, CURRENCY_PREFIXES).or_else(|| self.currency_code(j)) {
            currency = Some((c, j, k));
            j = k;
        }
        let (value, k) = self.digits(j)?;
        j = k;
        if currency.is_none()
            && let Some((c, k)) = self.longest(j, CURRENCY_SUFFIXES).or_else(|| self.currency_code(j))
        {
            currency = Some((c, j, k));
            j = k;
        }
        let mut per = None;
        if let Some((_, k)) = self.longest(j, PER)
            && let Some((u, m)) = self.longest(k, UNITS)
        {
            per = Some((u, k, m));
            j = m;
        }
        (currency.is_some() || per.is_some()).then_some(PriceCandidate { from: i, to: j, value, currency, per })
    }

    /// Keeps the first usable price; a price per another unit than the
    /// quantity's, or a second price, is left whole in `unparsed`.
    fn resolve_prices(&mut self) {
        for p in std::mem::take(&mut self.prices) {
            let price = Price::parse(&p.value.normalize().to_string()).ok();
            let unit_agrees = match (p.per, self.draft.unit) {
                (Some((u, _, _)), Some(q)) => u == q,
                _ => true,
            };
            let currency_agrees = match (p.currency, self.draft.currency) {
                (Some((c, _, _)), Some(d)) => c == d,
                _ => true,
            };
            let Some(price) = price.filter(|_| unit_agrees && currency_agrees && self.draft.price_limit.is_none())
            else {
                self.rejected.push((p.from, p.to));
                continue;
            };
            self.draft.price_limit = Some(price);
            self.take(p.from, p.to, DraftField::PriceLimit);
            if let Some((c, from, to)) = p.currency {
                self.draft.currency = Some(c);
                self.take(from, to, DraftField::Currency);
            }
            if let Some((u, from, to)) = p.per
                && self.draft.unit.is_none()
            {
                self.draft.unit = Some(u);
                self.take(from, to, DraftField::Unit);
            }
        }
    }

    // --- Incoterm and location ----------------------------------------------

    fn location_pass(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            if let Some((term, k)) = self.longest(i, INCOTERMS) {
                if !accept(&mut self.draft.incoterm, term) {
                    i = k;
                    continue;
                }
                self.take(i, k, DraftField::Incoterm);
                i = self.location(k, k, true).unwrap_or(k);
                continue;
            }
            if let Some((lower_case, k)) = self.longest(i, LOCATION_TRIGGERS)
                && let Some(end) = self.location(i, k, lower_case)
            {
                i = end;
                continue;
            }
            i += 1;
        }
    }

    /// Reads the place named from `words`, introduced from `from`; its end.
    fn location(&mut self, from: usize, words: usize, lower_case: bool) -> Option<usize> {
        let capital = |t: &Token, text: &str| text[t.start..t.end].chars().next().is_some_and(char::is_uppercase);
        let first = self.free(words).filter(|t| t.kind == TokenKind::Word && !is_keyword(&t.lower))?;
        let first_capital = capital(first, self.text);
        if !lower_case && !first_capital {
            return None;
        }
        let mut end = words + 1;
        while first_capital && end - words < 5 {
            match self.free(end) {
                Some(t) if t.kind == TokenKind::Word && !is_keyword(&t.lower) && capital(t, self.text) => end += 1,
                _ => break,
            }
        }
        let place = Location::parse(self.span(words, end)).ok()?;
        if !accept(&mut self.draft.location, place) {
            return None;
        }
        self.take(from, end, DraftField::Location);
        Some(end)
    }

    // --- side, quantity, commodity -----------------------------------------

    fn side_pass(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            match self.longest(i, SIDES) {
                Some((side, k)) => {
                    if accept(&mut self.draft.side, side) {
                        self.take(i, k, DraftField::Side);
                    }
                    i = k;
                }
                None => i += 1,
            }
        }
    }

    /// A number with a unit (`120 t`, `1.2k tonnes`, `half a ton`), or a
    /// number before a commodity (`120 wheat`, `500 of corn`).
    fn quantity_pass(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            let Some((value, j)) = self.number(i) else {
                i += 1;
                continue;
            };
            let unit = self.longest(j, UNITS);
            let before_commodity = self.longest(self.phrase(j, &["of"]).unwrap_or(j), COMMODITIES).is_some();
            if unit.is_none() && !before_commodity {
                i += 1;
                continue;
            }
            let end = unit.map_or(j, |(_, k)| k);
            match Quantity::parse(&value.normalize().to_string()) {
                Err(_) => self.reject(i, end),
                Ok(q) if self.draft.quantity.is_none() => {
                    self.draft.quantity = Some(q);
                    self.take(i, j, DraftField::Quantity);
                    if let Some((u, k)) = unit {
                        self.draft.unit = Some(u);
                        self.take(j, k, DraftField::Unit);
                    }
                }
                Ok(_) => {}
            }
            i = end;
        }
    }

    fn commodity_pass(&mut self) {
        let mut i = 0;
        while i < self.toks.len() {
            match self.longest(i, COMMODITIES) {
                Some((name, k)) => {
                    if let Ok(c) = Commodity::parse(name)
                        && accept(&mut self.draft.commodity, c)
                    {
                        self.take(i, k, DraftField::Commodity);
                    }
                    i = k;
                }
                None => i += 1,
            }
        }
    }

    // --- result ------------------------------------------------------------

    fn finish(mut self) -> ParseResult {
        let filler = |t: &Token| FILLER.contains(&t.lower.as_str());
        let mut unparsed = Vec::new();
        let mut i = 0;
        while let Some(t) = self.toks.get(i) {
            if let Some(&(_, to)) = self.rejected.iter().find(|(from, _)| *from == i) {
                unparsed.push(self.span(i, to).to_owned());
                i = to;
                continue;
            }
            if self.used.get(i).copied().unwrap_or(true) || filler(t) {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while self.free(j).is_some_and(|n| n.glued && !filler(n)) && !self.rejected.iter().any(|(f, _)| *f == j) {
                j += 1;
            }
            unparsed.push(self.span(i, j).to_owned());
            i = j;
        }
        self.understood.sort_by_key(|(start, _)| *start);
        ParseResult { draft: self.draft, understood: self.understood.into_iter().map(|(_, u)| u).collect(), unparsed }
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_trade_parse {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::trade_parse::Parse,
        ]; $($rest)* }
    };
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::procedure::{Access, Kind, Procedure};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("a time").with_timezone(&Utc)
    }

    /// Tuesday.
    const NOW: &str = "2026-12-01T10:00:00Z";

    /// (text, draft as JSON, unparsed), all at [`NOW`].
    fn cases() -> Vec<(&'static str, Value, Vec<&'static str>)> {
        vec![
            (
                "buy 120 t wheat grade 2 at most 245 EUR/t delivered Rotterdam, until Friday",
                json!({ "side": "buy", "quantity": "120", "unit": "t", "commodity": "wheat", "grade": "2",
                        "priceLimit": "245", "currency": "EUR", "location": "Rotterdam",
                        "expiresAt": "2026-12-04T23:59:59Z" }),
                vec![],
            ),
            (
                "sell 1,200 bushels of corn at least $4.50/bu FOB Santos within 3 days",
                json!({ "side": "sell", "quantity": "1200", "unit": "bu", "commodity": "corn", "priceLimit": "4.5",
                        "currency": "USD", "incoterm": "FOB", "location": "Santos",
                        "expiresAt": "2026-12-04T23:59:59Z" }),
                vec![],
            ),
            (
                "need 2.5k tonnes soybeans max 400 usd per tonne by 15 Dec",
                json!({ "side": "buy", "quantity": "2500", "unit": "t", "commodity": "soybeans", "priceLimit": "400",
                        "currency": "USD", "expiresAt": "2026-12-15T23:59:59Z" }),
                vec![],
            ),
            // Nothing understood.
            ("hello world, nice day", json!({}), vec!["hello", "world", "nice", "day"]),
            // Empty-ish.
            ("   ", json!({}), vec![]),
            (", the of please .", json!({}), vec![]),
            // The price's unit differs from the quantity's: the price is left whole.
            (
                "buy 100 t wheat at most 5 EUR/kg",
                json!({ "side": "buy", "quantity": "100", "unit": "t", "commodity": "wheat" }),
                vec!["at most 5 EUR/kg"],
            ),
            // Number words.
            (
                "buy one hundred twenty tonnes of barley",
                json!({ "side": "buy", "quantity": "120", "unit": "t", "commodity": "barley" }),
                vec![],
            ),
            (
                "offering twelve thousand barrels crude oil",
                json!({ "side": "sell", "quantity": "12000", "unit": "bbl", "commodity": "crude oil" }),
                vec![],
            ),
            (
                "want twenty-five metric tons of cocoa",
                json!({ "side": "buy", "quantity": "25", "unit": "t", "commodity": "cocoa" }),
                vec![],
            ),
            ("half a ton of coffee", json!({ "quantity": "0.5", "unit": "t", "commodity": "coffee" }), vec![]),
            // Symbols.
            (
                "sell 50 ozt gold at least £1,500",
                json!({ "side": "sell", "quantity": "50", "unit": "ozt", "commodity": "gold", "priceLimit": "1500",
                        "currency": "GBP" }),
                vec![],
            ),
            (
                "buy 10 kg cocoa for ¥900 per kg",
                json!({ "side": "buy", "quantity": "10", "unit": "kg", "commodity": "cocoa", "priceLimit": "900",
                        "currency": "JPY" }),
                vec![],
            ),
            (
                "want 3k lbs cotton up to $1,250.50/lb CIF Shanghai",
                json!({ "side": "buy", "quantity": "3000", "unit": "lb", "commodity": "cotton",
                        "priceLimit": "1250.5", "currency": "USD", "incoterm": "CIF", "location": "Shanghai" }),
                vec![],
            ),
            (
                "sell 1 200 m3 diesel below 300 USD a cubic metre ex works Chicago until tomorrow",
                json!({ "side": "sell", "quantity": "1200", "unit": "m3", "commodity": "diesel", "priceLimit": "300",
                        "currency": "USD", "incoterm": "EXW", "location": "Chicago",
                        "expiresAt": "2026-12-02T23:59:59Z" }),
                vec![],
            ),
            (
                "buy 2 million litres palm oil 245 euros per litre delivery in Hamburg today",
                json!({ "side": "buy", "quantity": "2000000", "unit": "l", "commodity": "palm oil",
                        "priceLimit": "245", "currency": "EUR", "location": "Hamburg",
                        "expiresAt": "2026-12-01T23:59:59Z" }),
                vec![],
            ),
            (
                "buy 500 t maize in 2 weeks",
                json!({ "side": "buy", "quantity": "500", "unit": "t", "commodity": "corn",
                        "expiresAt": "2026-12-15T23:59:59Z" }),
                vec![],
            ),
            (
                "sell 20 t sugar grade A until 2026-12-15",
                json!({ "side": "sell", "quantity": "20", "unit": "t", "commodity": "sugar", "grade": "A",
                        "expiresAt": "2026-12-15T23:59:59Z" }),
                vec![],
            ),
            (
                "buy 100 t No. 2 yellow corn until December 15",
                json!({ "side": "buy", "quantity": "100", "unit": "t", "commodity": "corn", "grade": "No. 2",
                        "expiresAt": "2026-12-15T23:59:59Z" }),
                vec!["yellow"],
            ),
            // Never a time in the past.
            (
                "buy 100 t wheat until 2026-11-30",
                json!({ "side": "buy", "quantity": "100", "unit": "t", "commodity": "wheat" }),
                vec!["until 2026-11-30"],
            ),
            // Values that do not fit.
            ("buy 0 t wheat", json!({ "side": "buy", "commodity": "wheat" }), vec!["0 t"]),
            ("sell 1234567890123 t copper", json!({ "side": "sell", "commodity": "copper" }), vec!["1234567890123 t"]),
            ("sell 1,2345 t wheat", json!({ "side": "sell", "commodity": "wheat" }), vec!["1,2345", "t"]),
            (
                "sell 25 t aluminum at least 2600 GBP/t by end of month",
                json!({ "side": "sell", "quantity": "25", "unit": "t", "commodity": "aluminium", "priceLimit": "2600",
                        "currency": "GBP", "expiresAt": "2026-12-31T23:59:59Z" }),
                vec![],
            ),
            (
                "buy 200 t rapeseed until next week",
                json!({ "side": "buy", "quantity": "200", "unit": "t", "commodity": "rapeseed",
                        "expiresAt": "2026-12-13T23:59:59Z" }),
                vec![],
            ),
            (
                "buy 40 t urea 300 usd/t at Rotterdam until Friday please",
                json!({ "side": "buy", "quantity": "40", "unit": "t", "commodity": "urea", "priceLimit": "300",
                        "currency": "USD", "location": "Rotterdam", "expiresAt": "2026-12-04T23:59:59Z" }),
                vec![],
            ),
            // A second side that disagrees is not guessed.
            (
                "buy sell 10 t rice",
                json!({ "side": "buy", "quantity": "10", "unit": "t", "commodity": "rice" }),
                vec!["sell"],
            ),
            // Only the price names a unit.
            (
                "buy wheat at most 245 EUR/t",
                json!({ "side": "buy", "commodity": "wheat", "priceLimit": "245", "currency": "EUR", "unit": "t" }),
                vec![],
            ),
            (
                "purchase 5,000 bu soybeans 13.5 USD/bu within 24 hours",
                json!({ "side": "buy", "quantity": "5000", "unit": "bu", "commodity": "soybeans", "priceLimit": "13.5",
                        "currency": "USD", "expiresAt": "2026-12-02T10:00:00Z" }),
                vec![],
            ),
            (
                "bid 100 t wheat in Rotterdam",
                json!({ "side": "buy", "quantity": "100", "unit": "t", "commodity": "wheat", "location": "Rotterdam" }),
                vec![],
            ),
            // A second price is not guessed.
            (
                "buy 10 t wheat 200 EUR/t 210 EUR/t",
                json!({ "side": "buy", "quantity": "10", "unit": "t", "commodity": "wheat", "priceLimit": "200",
                        "currency": "EUR" }),
                vec!["210 EUR/t"],
            ),
            (
                "need to sell 300 t canola delivered New York by Dec 20th",
                json!({ "side": "sell", "quantity": "300", "unit": "t", "commodity": "canola", "location": "New York",
                        "expiresAt": "2026-12-20T23:59:59Z" }),
                vec![],
            ),
            (
                "have 120 wheat FOB Santos until 3 January",
                json!({ "side": "sell", "quantity": "120", "commodity": "wheat", "incoterm": "FOB", "location": "Santos",
                        "expiresAt": "2027-01-03T23:59:59Z" }),
                vec![],
            ),
            (
                "buy 120 t wheat by sometime soon",
                json!({ "side": "buy", "quantity": "120", "unit": "t", "commodity": "wheat" }),
                vec!["by", "sometime", "soon"],
            ),
            // "all" is the lek only when written ALL.
            (
                "sell 10 t gold 50 all/t",
                json!({ "side": "sell", "quantity": "10", "unit": "t", "commodity": "gold" }),
                vec!["50", "all/t"],
            ),
            (
                "WTB 1.2k MT wheat max. €245 per tonne by Friday",
                json!({ "side": "buy", "quantity": "1200", "unit": "t", "commodity": "wheat", "priceLimit": "245",
                        "currency": "EUR", "expiresAt": "2026-12-04T23:59:59Z" }),
                vec![],
            ),
            (
                "selling 500 t barley at 245 pounds sterling a ton",
                json!({ "side": "sell", "quantity": "500", "unit": "t", "commodity": "barley", "priceLimit": "245",
                        "currency": "GBP" }),
                vec![],
            ),
            (
                "£245 for 20 t copper",
                json!({ "quantity": "20", "unit": "t", "commodity": "copper", "priceLimit": "245", "currency": "GBP" }),
                vec![],
            ),
            (
                "buy 300 pounds of coffee",
                json!({ "side": "buy", "quantity": "300", "unit": "lb", "commodity": "coffee" }),
                vec![],
            ),
            (
                "sell 100 t wheat in two weeks, delivery next week",
                json!({ "side": "sell", "quantity": "100", "unit": "t", "commodity": "wheat",
                        "expiresAt": "2026-12-15T23:59:59Z" }),
                vec!["delivery", "next", "week"],
            ),
        ]
    }

    #[test]
    fn trade_parse_table() {
        let now = at(NOW);
        let cases = cases();
        assert!(cases.len() >= 25);
        let mut failed = Vec::new();
        for (text, draft, unparsed) in cases {
            let r = parse(text, now);
            let got = serde_json::to_value(&r.draft).expect("json");
            if got != draft || r.unparsed != unparsed {
                failed.push(format!(
                    "{text:?}\n  draft {got}\n  want  {draft}\n  unparsed {:?} want {unparsed:?}",
                    r.unparsed
                ));
            }
            for u in &r.understood {
                assert!(text.contains(&u.text), "{:?} of {text:?}", u.text);
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    #[test]
    fn trade_parse_records_the_words_of_each_field() {
        let r = parse("buy 120 t wheat grade 2 at most 245 EUR/t delivered Rotterdam, until Friday", at(NOW));
        let got: Vec<(DraftField, &str)> = r.understood.iter().map(|u| (u.field, u.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (DraftField::Side, "buy"),
                (DraftField::Quantity, "120"),
                (DraftField::Unit, "t"),
                (DraftField::Commodity, "wheat"),
                (DraftField::Grade, "grade 2"),
                (DraftField::PriceLimit, "at most 245 EUR/t"),
                (DraftField::Currency, "EUR"),
                (DraftField::Location, "delivered Rotterdam"),
                (DraftField::ExpiresAt, "until Friday"),
            ]
        );
        let wire = serde_json::to_value(&r).expect("json");
        assert_eq!(wire["understood"][5], json!({ "field": "priceLimit", "text": "at most 245 EUR/t" }));
        assert_eq!(wire["unparsed"], json!([]));
    }

    #[test]
    fn trade_parse_weekday_today_means_today_and_a_passed_date_means_next_year() {
        let friday = at("2026-12-04T10:00:00Z");
        assert_eq!(parse("until Friday", friday).draft.expires_at, Some(at("2026-12-04T23:59:59Z")));
        assert_eq!(parse("until next Friday", friday).draft.expires_at, Some(at("2026-12-11T23:59:59Z")));
        let late = at("2026-12-20T10:00:00Z");
        assert_eq!(parse("by 15 Dec", late).draft.expires_at, Some(at("2027-12-15T23:59:59Z")));
        assert_eq!(parse("by end of month", late).draft.expires_at, Some(at("2026-12-31T23:59:59Z")));
        assert_eq!(parse("until next month", late).draft.expires_at, Some(at("2027-01-31T23:59:59Z")));
    }

    #[test]
    fn trade_parse_procedure_and_params() {
        assert_eq!(Parse::METHOD, "trades.parse");
        assert_eq!(Parse::KIND, Kind::Query);
        assert_eq!(Parse::ACCESS, Access::User);
        let params: ParseParams = serde_json::from_value(json!({ "text": "  buy wheat " })).expect("params");
        assert_eq!(params.text.as_str(), "buy wheat");
        for bad in [json!({ "text": "  " }), json!({ "text": "x".repeat(1001) }), json!({ "text": "a\u{0}b" })] {
            assert!(serde_json::from_value::<ParseParams>(bad.clone()).is_err(), "{bad}");
        }
        assert!(TradeText::parse(&"x".repeat(1000)).is_ok());
        assert!(TradeText::parse("line one\nline two").is_ok());
        assert_eq!(serde_json::to_value(Incoterm::FOB).expect("json"), json!("FOB"));
        assert_eq!(serde_json::to_value(DraftField::ExpiresAt).expect("json"), json!("expiresAt"));
        assert_eq!(serde_json::to_value(Side::Sell).expect("json"), json!("sell"));
        let example = Parse::example().expect("an example");
        let r = parse(example.text.as_str(), at(NOW));
        assert!(r.unparsed.is_empty(), "{r:?}");
        let back: ParseResult = serde_json::from_value(serde_json::to_value(&r).expect("json")).expect("round trip");
        assert_eq!(back, r);
    }

    #[test]
    fn trade_parse_never_panics_is_deterministic_and_quotes_the_input() {
        const WORDS: &[&str] = &[
            "buy",
            "sell",
            "want",
            "offer",
            "120",
            "1,200",
            "1 200",
            "2.5",
            "1.2k",
            "3k",
            "0",
            "00",
            "9999999999999",
            "one",
            "hundred",
            "twenty",
            "thousand",
            "million",
            "half",
            "a",
            "t",
            "tonnes",
            "kg",
            "bushels",
            "bbl",
            "m3",
            "ozt",
            "troy",
            "ounces",
            "metric",
            "ton",
            "of",
            "wheat",
            "corn",
            "crude",
            "oil",
            "palm",
            "gold",
            "grade",
            "2",
            "A",
            "No.",
            "no",
            "at",
            "most",
            "least",
            "max",
            "up",
            "to",
            "$",
            "€",
            "£",
            "¥",
            "EUR",
            "usd",
            "all",
            "/",
            "per",
            "245",
            "4.50",
            "delivered",
            "delivery",
            "in",
            "Rotterdam",
            "New",
            "York",
            "FOB",
            "cif",
            "ex",
            "works",
            "Santos",
            "until",
            "by",
            "Friday",
            "next",
            "week",
            "month",
            "end",
            "tomorrow",
            "today",
            "within",
            "3",
            "days",
            "hours",
            "15",
            "Dec",
            "December",
            "2026-12-15",
            "2025-01-01",
            "31",
            "Feb",
            "123456789012345678901234567890123",
            "0.1234567890123456789012345678901",
            "1.2.3k",
            "billion",
            "29",
            ",",
            ".",
            "-",
            "please",
            "hello",
            "x",
            "ünïcödé",
            "日本",
            "🙂",
            "1.2.3",
            "1,2",
            "9,999,999",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        let now = at(NOW);
        for _ in 0..400 {
            let len = next() % 16;
            let mut text = String::new();
            for _ in 0..len {
                if !text.is_empty() && next() % 6 != 0 {
                    text.push(' ');
                }
                text.push_str(WORDS[next() % WORDS.len()]);
            }
            let r = parse(&text, now);
            assert_eq!(parse(&text, now), r, "{text:?}");
            for u in &r.understood {
                assert!(text.contains(&u.text), "{:?} of {text:?}", u.text);
            }
            for u in &r.unparsed {
                assert!(text.contains(u.as_str()), "{u:?} of {text:?}");
            }
            if let Some(at) = r.draft.expires_at {
                assert!(at >= now, "{text:?}");
            }
        }
    }
}
