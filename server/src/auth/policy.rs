//! The password policy, in one place (OWASP ASVS 5 V6, NIST SP 800-63B):
//! length in Unicode characters with no truncation, a blocklist of common
//! passwords, nothing taken from the account's own address or name, and no
//! reuse of recent passwords. Composition rules and expiry exist as legacy
//! settings, off by default.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Serialize;

use crate::config::{CharClass, Config};

/// 30,000 common passwords, most common first (zxcvbn's list, MIT).
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().filter(|l| !l.is_empty()).collect());

/// One way a password breaks the policy: `data.violations[i]` of a
/// PASSWORD_POLICY error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Violation {
    pub code: &'static str,
    pub message: String,
}

pub(crate) struct PasswordPolicy {
    min_chars: usize,
    composition: Vec<CharClass>,
    /// How many previous passwords (the current one included) a new one may
    /// not repeat.
    pub history: usize,
    /// Days a password lasts; 0: forever.
    pub max_age_days: u32,
}

impl PasswordPolicy {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            min_chars: usize::try_from(config.password_min_chars).unwrap_or(8),
            composition: config.password_composition.clone(),
            history: usize::try_from(config.password_history).unwrap_or(5),
            max_age_days: config.password_max_age_days,
        }
    }

    /// Every rule `password` breaks, for an account with this address and name.
    pub(crate) fn violations(&self, password: &str, email: &str, display_name: &str) -> Vec<Violation> {
        let mut v = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_chars {
            v.push(Violation { code: "TOO_SHORT", message: format!("must be at least {} characters", self.min_chars) });
        }
        if chars > 128 {
            v.push(Violation { code: "TOO_LONG", message: "must be at most 128 characters".into() });
        }
        let lower = password.to_lowercase();
        if COMMON.contains(lower.as_str()) {
            v.push(Violation { code: "COMMON", message: "is one of the most common passwords".into() });
        }
        let local = email.split('@').next().unwrap_or_default().to_lowercase();
        if local.chars().count() >= 3 && lower.contains(&local) {
            v.push(Violation { code: "CONTAINS_EMAIL", message: "must not contain the e-mail address".into() });
        }
        let name = display_name.trim().to_lowercase();
        let name_parts = std::iter::once(name.as_str())
            .chain(name.split_whitespace())
            .filter(|p| p.chars().count() >= 3)
            .collect::<Vec<_>>();
        if name_parts.iter().any(|p| lower.contains(p)) {
            v.push(Violation { code: "CONTAINS_NAME", message: "must not contain the display name".into() });
        }
        for class in &self.composition {
            let (has, code, what) = match class {
                CharClass::Upper => (password.chars().any(char::is_uppercase), "NEEDS_UPPER", "an upper-case letter"),
                CharClass::Lower => (password.chars().any(char::is_lowercase), "NEEDS_LOWER", "a lower-case letter"),
                CharClass::Digit => (password.chars().any(|c| c.is_ascii_digit()), "NEEDS_DIGIT", "a digit"),
                CharClass::Special => (password.chars().any(|c| !c.is_alphanumeric()), "NEEDS_SPECIAL", "a symbol"),
            };
            if !has {
                v.push(Violation { code, message: format!("must contain {what}") });
            }
        }
        v
    }

    /// Whether a password last changed at `changed` has expired by `now`.
    pub(crate) fn expired(&self, changed: chrono::NaiveDateTime, now: chrono::NaiveDateTime) -> bool {
        self.max_age_days > 0 && changed + chrono::Duration::days(i64::from(self.max_age_days)) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy { min_chars: 8, composition: vec![], history: 5, max_age_days: 0 }
    }

    fn codes(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.code).collect()
    }

    #[test]
    fn blocklist_is_large_and_used() {
        assert!(COMMON.len() >= 10_000, "{}", COMMON.len());
        assert_eq!(codes(&policy().violations("Password1", "x@y.io", "")), ["COMMON"]);
        assert_eq!(codes(&policy().violations("qwertyuiop", "x@y.io", "")), ["COMMON"]);
        assert!(policy().violations("correct horse battery staple", "x@y.io", "").is_empty());
    }

    #[test]
    fn every_violation_is_listed() {
        let p = PasswordPolicy {
            min_chars: 12,
            composition: vec![CharClass::Upper, CharClass::Digit, CharClass::Special],
            history: 5,
            max_age_days: 0,
        };
        let v = p.violations("annabel", "annabel@example.com", "Annabel Lee");
        assert_eq!(
            codes(&v),
            ["TOO_SHORT", "CONTAINS_EMAIL", "CONTAINS_NAME", "NEEDS_UPPER", "NEEDS_DIGIT", "NEEDS_SPECIAL"]
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(codes(&policy().violations("ééééééé", "x@y.io", "")).contains(&"TOO_SHORT"));
        assert!(!codes(&policy().violations("éèêëēėęẽ", "x@y.io", "")).contains(&"TOO_SHORT"));
    }

    #[test]
    fn expiry_is_off_by_default() {
        let t = chrono::DateTime::from_timestamp(0, 0).map(|d| d.naive_utc()).unwrap_or_default();
        assert!(!policy().expired(t, t + chrono::Duration::days(10_000)));
        let p = PasswordPolicy { max_age_days: 90, ..policy() };
        assert!(p.expired(t, t + chrono::Duration::days(90)));
        assert!(!p.expired(t, t + chrono::Duration::days(89)));
    }
}
