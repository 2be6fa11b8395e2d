//! Validated values. Each is made only by parsing, so a handler that holds
//! one knows it is valid; serde parses them on the way in, and a failure
//! becomes a VALIDATION error naming the field.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ts_rs::TS;

/// serde for a string newtype: serialized as the string, deserialized through
/// `TryFrom<String>` so the parse error names the field.
macro_rules! string_serde {
    ($($t:ident),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $t::try_from(raw).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_serde!(Email, NewPassword, Password, DisplayName, Token, OneTimeCode, Cursor, SearchQuery, Slug);

/// JSON Schema for a string newtype: a named string schema with its bounds,
/// matching what its `TryFrom<String>` accepts as far as JSON Schema can say.
macro_rules! string_schema {
    ($($t:ident => $schema:tt;)*) => {$(
        impl JsonSchema for $t {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($t))
            }
            fn schema_id() -> Cow<'static, str> {
                Cow::Borrowed(concat!(module_path!(), "::", stringify!($t)))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    )*};
}
string_schema! {
    Email => { "type": "string", "format": "email", "minLength": 1, "maxLength": 254 };
    NewPassword => { "type": "string", "minLength": 8, "maxLength": 128 };
    Password => { "type": "string", "minLength": 1, "maxLength": 1024 };
    DisplayName => { "type": "string", "minLength": 1, "maxLength": 100 };
    Token => { "type": "string", "minLength": 1, "maxLength": 512 };
    OneTimeCode => { "type": "string", "minLength": 6, "maxLength": 32 };
    Cursor => { "type": "string", "minLength": 1, "maxLength": 200 };
    SearchQuery => { "type": "string", "minLength": 1, "maxLength": 100 };
    Slug => { "type": "string", "minLength": 3, "maxLength": 40, "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$" };
}

/// An e-mail address, trimmed, with its domain lower-cased.
#[derive(Clone, PartialEq, Eq, Hash, TS)]
#[ts(type = "string")]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("must be an e-mail address".into());
        };
        let bad = |c: char| c.is_whitespace() || c.is_control() || c == '@' || c == '<' || c == '>';
        if local.is_empty() || local.len() > 64 || local.chars().any(bad) {
            return Err("must be an e-mail address".into());
        }
        let domain_ok = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err("must be an e-mail address".into());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lookup key: the whole address lower-cased, so that `Ann@x.io` and
    /// `ann@x.io` are one account.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: 8 to 128 Unicode characters, never truncated. Never
/// printed by `Debug`.
#[derive(Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(s: String) -> Result<Self, String> {
        let n = s.chars().count();
        if n < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if n > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Self(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NewPassword {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl From<NewPassword> for String {
    fn from(p: NewPassword) -> String {
        p.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// A password offered at sign-in. Only bounded in length (so nobody makes
/// the server hash megabytes); the policy applies to new passwords only.
#[derive(Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct Password(String);

impl Password {
    pub const MAX_BYTES: usize = 1024;

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Password {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > Self::MAX_BYTES {
            return Err(format!("must be at most {} bytes", Self::MAX_BYTES));
        }
        Ok(Self(s))
    }
}

impl From<Password> for String {
    fn from(p: Password) -> String {
        p.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A name shown to people: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<DisplayName> for String {
    fn from(d: DisplayName) -> String {
        d.0
    }
}

/// A bounded opaque token string (refresh tokens, verification tokens).
#[derive(Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct Token(String);

impl Token {
    pub const MAX_BYTES: usize = 512;

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Token {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > Self::MAX_BYTES {
            return Err(format!("must be at most {} bytes", Self::MAX_BYTES));
        }
        Ok(Self(s))
    }
}

impl From<Token> for String {
    fn from(t: Token) -> String {
        t.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// A one-time code as a person types it: a 6-digit code from an
/// authenticator app or an e-mail, or a recovery code. Spaces and dashes are
/// dropped and letters lower-cased, so `123 456` and `ABCD-EFGH` compare as
/// typed. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct OneTimeCode(String);

impl OneTimeCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > 32 {
            return Err("must be at most 32 characters".into());
        }
        let s: String =
            raw.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
        if s.len() < 6 {
            return Err("must be at least 6 characters".into());
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("must contain only letters and digits".into());
        }
        Ok(Self(s))
    }

    /// The code without separators, lower-cased.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it has the shape of a 6-digit code.
    pub fn is_six_digits(&self) -> bool {
        self.0.len() == 6 && self.0.bytes().all(|b| b.is_ascii_digit())
    }
}

impl TryFrom<String> for OneTimeCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<OneTimeCode> for String {
    fn from(c: OneTimeCode) -> String {
        c.0
    }
}

impl std::fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeCode(***)")
    }
}

/// Where a list continues: the `nextCursor` of the previous page, opaque to
/// clients.
#[derive(Debug, Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct Cursor(String);

impl Cursor {
    pub const MAX_BYTES: usize = 200;

    pub fn new(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Cursor {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.len() > Self::MAX_BYTES {
            return Err(format!("must be 1 to {} bytes", Self::MAX_BYTES));
        }
        Ok(Self(s))
    }
}

impl From<Cursor> for String {
    fn from(c: Cursor) -> String {
        c.0
    }
}

/// Text to search for: trimmed, 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct SearchQuery(String);

impl SearchQuery {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SearchQuery {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
            return Err("must be 1 to 100 characters without control characters".into());
        }
        Ok(Self(t.to_owned()))
    }
}

impl From<SearchQuery> for String {
    fn from(q: SearchQuery) -> String {
        q.0
    }
}

/// A short name for URLs: 3 to 40 of `a-z`, `0-9` and `-`, not starting or
/// ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct Slug(String);

impl Slug {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = (3..=40).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            return Err("must be 3 to 40 of a-z, 0-9 and -, not starting or ending with -".into());
        }
        Ok(Self(s))
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

/// How many items a page holds: 1 to 200 (default 50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(type = "number")]
pub struct PageLimit(u32);

impl PageLimit {
    pub const MAX: u32 = 200;
    pub const DEFAULT: u32 = 50;

    pub fn get(self) -> u32 {
        self.0
    }

    /// The limit asked for, or the default.
    pub fn or_default(limit: Option<Self>) -> u32 {
        limit.map_or(Self::DEFAULT, Self::get)
    }
}

impl<'de> Deserialize<'de> for PageLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if n == 0 || n > Self::MAX {
            return Err(serde::de::Error::custom(format!("must be 1 to {}", Self::MAX)));
        }
        Ok(Self(n))
    }
}

impl JsonSchema for PageLimit {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("PageLimit")
    }
    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed(concat!(module_path!(), "::PageLimit"))
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": 200 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_lowercases_domain_and_rejects_garbage() {
        assert_eq!(Email::parse(" Ann@Example.COM ").expect("valid").as_str(), "Ann@example.com");
        for bad in ["", "ann", "@x.io", "ann@", "a b@x.io", "ann@x..io", "ann@-x.io"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn new_password_counts_characters_not_bytes() {
        assert!(NewPassword::parse("ééééééé".into()).is_err());
        assert!(NewPassword::parse("éééééééé".into()).is_ok());
        assert!(NewPassword::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn one_time_code_drops_separators() {
        assert_eq!(OneTimeCode::parse("123 456").expect("valid").expose(), "123456");
        assert!(OneTimeCode::parse("123 456").expect("valid").is_six_digits());
        assert_eq!(OneTimeCode::parse("ABCD-EFGH-JK").expect("valid").expose(), "abcdefghjk");
        assert!(OneTimeCode::parse("12345").is_err());
        assert!(OneTimeCode::parse("12345!").is_err());
    }
}
