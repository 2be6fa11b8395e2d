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
string_serde!(Email, NewPassword, Password, DisplayName, Token);

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
}
