//! The values of the trade desk, each made only by parsing: quantities and
//! prices as decimal strings (never floats), units from a closed list,
//! currencies from ISO 4217, and bounded texts (commodity, location, grade).

use std::borrow::Cow;
use std::str::FromStr;

pub use rust_decimal::Decimal;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ts_rs::TS;

/// Digits before the decimal point a quantity or price may have.
pub const MAX_INTEGER_DIGITS: usize = 12;
/// Digits after the decimal point a quantity or price may have.
pub const MAX_FRACTION_DIGITS: usize = 6;

/// Reads a plain decimal string: digits, at most one point, no sign, no
/// exponent, no spaces; at most [`MAX_INTEGER_DIGITS`] and
/// [`MAX_FRACTION_DIGITS`] digits.
fn parse_decimal(raw: &str) -> Result<Decimal, String> {
    let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (raw.contains('.') && frac.is_empty()) {
        return Err("must be a decimal string such as \"1250.50\" (digits, at most one point, no sign)".into());
    }
    let significant = int.trim_start_matches('0');
    if significant.len() > MAX_INTEGER_DIGITS {
        return Err(format!("must have at most {MAX_INTEGER_DIGITS} digits before the point"));
    }
    if frac.len() > MAX_FRACTION_DIGITS {
        return Err(format!("must have at most {MAX_FRACTION_DIGITS} digits after the point"));
    }
    Decimal::from_str(raw).map_err(|e| e.to_string())
}

macro_rules! decimal_value {
    ($(#[$meta:meta])* $name:ident, min_exclusive_zero = $positive:expr, max = $max:expr, schema = $schema:tt) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, TS)]
        #[ts(type = "string")]
        pub struct $name(Decimal);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                let d = parse_decimal(raw)?;
                if $positive && d.is_zero() {
                    return Err("must be more than 0".into());
                }
                if let Some(max) = $max {
                    let max: Decimal = Decimal::from(max);
                    if d > max {
                        return Err(format!("must be at most {max}"));
                    }
                }
                Ok(Self(d.normalize()))
            }

            pub fn get(self) -> Decimal {
                self.0
            }

            /// The canonical string: no trailing zeros after the point.
            pub fn to_wire(self) -> String {
                self.0.normalize().to_string()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_wire())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_wire())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // A JSON number is refused: a float may already have lost digits.
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
            fn schema_id() -> Cow<'static, str> {
                Cow::Borrowed(concat!(module_path!(), "::", stringify!($name)))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

decimal_value! {
    /// A quantity: a decimal string, more than 0, at most 12 digits before
    /// the point and 6 after (`"120"`, `"0.5"`).
    Quantity, min_exclusive_zero = true, max = None::<i64>,
    schema = { "type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,6})?$", "description": "a decimal string, more than 0" }
}

decimal_value! {
    /// A price per unit: a decimal string, more than 0, at most 12 digits
    /// before the point and 6 after (`"245.50"`).
    Price, min_exclusive_zero = true, max = None::<i64>,
    schema = { "type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,6})?$", "description": "a decimal string, more than 0" }
}

decimal_value! {
    /// A percentage: a decimal string from 0 to 100 (`"13.5"`).
    Percent, min_exclusive_zero = false, max = Some(100),
    schema = { "type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,6})?$", "description": "a decimal string, 0 to 100" }
}

/// A unit of quantity, from a closed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
pub enum Unit {
    /// Metric tonne (1,000 kg).
    #[serde(rename = "t")]
    Tonne,
    #[serde(rename = "kg")]
    Kilogram,
    /// Pound (avoirdupois).
    #[serde(rename = "lb")]
    Pound,
    /// Bushel.
    #[serde(rename = "bu")]
    Bushel,
    /// Barrel (42 US gallons).
    #[serde(rename = "bbl")]
    Barrel,
    #[serde(rename = "m3")]
    CubicMetre,
    #[serde(rename = "l")]
    Litre,
    /// Troy ounce.
    #[serde(rename = "ozt")]
    TroyOunce,
}

impl Unit {
    pub const ALL: &'static [Unit] = &[
        Self::Tonne,
        Self::Kilogram,
        Self::Pound,
        Self::Bushel,
        Self::Barrel,
        Self::CubicMetre,
        Self::Litre,
        Self::TroyOunce,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tonne => "t",
            Self::Kilogram => "kg",
            Self::Pound => "lb",
            Self::Bushel => "bu",
            Self::Barrel => "bbl",
            Self::CubicMetre => "m3",
            Self::Litre => "l",
            Self::TroyOunce => "ozt",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|u| u.as_str() == s)
    }
}

macro_rules! currencies {
    ($($code:ident),* $(,)?) => {
        /// A currency, by its ISO 4217 code (the codes in use).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS, JsonSchema)]
        pub enum Currency { $($code),* }

        impl Currency {
            /// Every currency (`Currency::ALL` is the Albanian lek).
            pub const EVERY: &'static [Currency] = &[$(Self::$code),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$code => stringify!($code)),* }
            }

            /// The currency of an ISO 4217 code (upper case).
            pub fn from_code(s: &str) -> Option<Self> {
                match s { $(stringify!($code) => Some(Self::$code),)* _ => None }
            }
        }
    };
}

currencies! {
    AED, AFN, ALL, AMD, AOA, ARS, AUD, AWG, AZN, BAM, BBD, BDT, BGN, BHD, BIF, BMD, BND, BOB, BRL, BSD,
    BTN, BWP, BYN, BZD, CAD, CDF, CHF, CLP, CNY, COP, CRC, CUP, CVE, CZK, DJF, DKK, DOP, DZD, EGP, ERN,
    ETB, EUR, FJD, FKP, GBP, GEL, GHS, GIP, GMD, GNF, GTQ, GYD, HKD, HNL, HTG, HUF, IDR, ILS, INR, IQD,
    IRR, ISK, JMD, JOD, JPY, KES, KGS, KHR, KMF, KPW, KRW, KWD, KYD, KZT, LAK, LBP, LKR, LRD, LSL, LYD,
    MAD, MDL, MGA, MKD, MMK, MNT, MOP, MRU, MUR, MVR, MWK, MXN, MYR, MZN, NAD, NGN, NIO, NOK, NPR, NZD,
    OMR, PAB, PEN, PGK, PHP, PKR, PLN, PYG, QAR, RON, RSD, RUB, RWF, SAR, SBD, SCR, SDG, SEK, SGD, SHP,
    SLE, SOS, SRD, SSP, STN, SVC, SYP, SZL, THB, TJS, TMT, TND, TOP, TRY, TTD, TWD, TZS, UAH, UGX, USD,
    UYU, UZS, VES, VND, VUV, WST, XAF, XCD, XCG, XOF, XPF, YER, ZAR, ZMW, ZWG,
}

macro_rules! bounded_text {
    ($(#[$meta:meta])* $name:ident, max = $max:expr, lower = $lower:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, TS)]
        #[ts(type = "string")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, String> {
                let s: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
                if s.is_empty() {
                    return Err("must not be empty".into());
                }
                if s.chars().count() > Self::MAX_CHARS {
                    return Err(format!("must be at most {} characters", Self::MAX_CHARS));
                }
                if s.chars().any(char::is_control) {
                    return Err("must not contain control characters".into());
                }
                Ok(Self(if $lower { s.to_lowercase() } else { s }))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
            fn schema_id() -> Cow<'static, str> {
                Cow::Borrowed(concat!(module_path!(), "::", stringify!($name)))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "minLength": 1, "maxLength": $max })
            }
        }
    };
}

bounded_text! {
    /// What is traded (`"wheat"`): 1 to 64 characters, spaces collapsed,
    /// lower-cased (so filters match whatever the case given).
    Commodity, max = 64, lower = true
}

bounded_text! {
    /// A place (`"Rotterdam"`): 1 to 120 characters, spaces collapsed.
    Location, max = 120, lower = false
}

bounded_text! {
    /// A quality grade (`"2"`, `"No. 2 Hard Red Winter"`): 1 to 64 characters.
    Grade, max = 64, lower = false
}

bounded_text! {
    /// A short name (a laboratory): 1 to 120 characters.
    ShortText, max = 120, lower = false
}

bounded_text! {
    /// A free note: 1 to 2,000 characters.
    Note, max = 2000, lower = false
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decimals_are_strings_with_bounded_digits() {
        let q: Quantity = serde_json::from_value(json!("120.500")).expect("parses");
        assert_eq!(q.to_wire(), "120.5");
        assert_eq!(serde_json::to_value(q).expect("json"), json!("120.5"));
        for bad in
            [json!(120), json!(1.5), json!("-1"), json!("1e3"), json!(" 1"), json!("1."), json!(".5"), json!("0")]
        {
            assert!(serde_json::from_value::<Quantity>(bad.clone()).is_err(), "{bad}");
        }
        assert!(Quantity::parse("999999999999.999999").is_ok());
        assert!(Quantity::parse("1000000000000").is_err());
        assert!(Quantity::parse("1.0000001").is_err());
        assert!(Quantity::parse("000000000000001").is_ok(), "leading zeros are not digits of the value");
        assert!(Percent::parse("0").is_ok());
        assert!(Percent::parse("100").is_ok());
        assert!(Percent::parse("100.01").is_err());
    }

    #[test]
    fn units_and_currencies_are_closed_lists() {
        assert_eq!(serde_json::from_value::<Unit>(json!("t")).expect("unit"), Unit::Tonne);
        assert!(serde_json::from_value::<Unit>(json!("tons")).is_err());
        for u in Unit::ALL {
            assert_eq!(Unit::from_wire(u.as_str()), Some(*u));
            assert_eq!(serde_json::to_value(u).expect("json"), json!(u.as_str()));
        }
        assert_eq!(serde_json::from_value::<Currency>(json!("EUR")).expect("EUR"), Currency::EUR);
        assert!(serde_json::from_value::<Currency>(json!("eur")).is_err());
        assert!(serde_json::from_value::<Currency>(json!("XYZ")).is_err());
        for c in Currency::EVERY {
            assert_eq!(Currency::from_code(c.as_str()), Some(*c));
            assert_eq!(c.as_str().len(), 3);
        }
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(Commodity::parse("  Hard   Wheat ").expect("ok").as_str(), "hard wheat");
        assert_eq!(Location::parse("Rotterdam").expect("ok").as_str(), "Rotterdam");
        assert!(Commodity::parse("   ").is_err());
        assert!(Commodity::parse(&"x".repeat(65)).is_err());
    }
}
