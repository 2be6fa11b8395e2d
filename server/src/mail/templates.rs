//! The mails the server sends, each with a plain-text and an HTML body made
//! from the templates in `server/templates/mail`.

use std::sync::LazyLock;

use minijinja::{Environment, context};

/// A mail to send, with what its template needs. Links are built from the
/// configured public URL, never from the request.
pub(crate) enum Mail<'a> {
    VerifyEmail { name: &'a str, token: &'a str, hours: i64 },
    ResetPassword { name: &'a str, token: &'a str, minutes: i64 },
    LoginCode { name: &'a str, code: &'a str, minutes: i64, attempts: i32 },
    AccountExists { name: &'a str },
    AccountLocked { name: &'a str, failures: u32, minutes: u32 },
    PasswordChanged { name: &'a str },
    Invitation { org: &'a str, inviter: &'a str, role: &'a str, token: &'a str, days: i64 },
    /// A notification sent by e-mail.
    Notice { name: &'a str, title: &'a str, body: &'a str },
}

/// A mail ready for the outbox.
pub(crate) struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    let files: [(&str, &str); 17] = [
        ("base.html", include_str!("../../templates/mail/base.html")),
        ("verify_email.txt", include_str!("../../templates/mail/verify_email.txt")),
        ("verify_email.html", include_str!("../../templates/mail/verify_email.html")),
        ("reset_password.txt", include_str!("../../templates/mail/reset_password.txt")),
        ("reset_password.html", include_str!("../../templates/mail/reset_password.html")),
        ("login_code.txt", include_str!("../../templates/mail/login_code.txt")),
        ("login_code.html", include_str!("../../templates/mail/login_code.html")),
        ("account_exists.txt", include_str!("../../templates/mail/account_exists.txt")),
        ("account_exists.html", include_str!("../../templates/mail/account_exists.html")),
        ("account_locked.txt", include_str!("../../templates/mail/account_locked.txt")),
        ("account_locked.html", include_str!("../../templates/mail/account_locked.html")),
        ("password_changed.txt", include_str!("../../templates/mail/password_changed.txt")),
        ("password_changed.html", include_str!("../../templates/mail/password_changed.html")),
        ("invitation.txt", include_str!("../../templates/mail/invitation.txt")),
        ("invitation.html", include_str!("../../templates/mail/invitation.html")),
        ("notice.txt", include_str!("../../templates/mail/notice.txt")),
        ("notice.html", include_str!("../../templates/mail/notice.html")),
    ];
    for (name, source) in files {
        // The templates are part of the binary; a broken one fails the tests.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "mail template does not parse");
        }
    }
    env
});

/// A link on the configured public URL. Marked safe for HTML: it comes from
/// the operator's setting and a URL-safe token, and escaping would turn its
/// slashes into entities.
fn link(public_url: &str, path: &str, token: &str) -> minijinja::Value {
    minijinja::Value::from_safe_string(format!("{}{path}?token={token}", public_url.trim_end_matches('/')))
}

impl Mail<'_> {
    pub(crate) fn render(&self, public_url: &str) -> anyhow::Result<Rendered> {
        let reset_link =
            minijinja::Value::from_safe_string(format!("{}/forgot-password", public_url.trim_end_matches('/')));
        let (template, subject, ctx) = match self {
            Self::VerifyEmail { name, token, hours } => (
                "verify_email",
                "Confirm your e-mail address",
                context! { name, token, hours, link => link(public_url, "/verify-email", token) },
            ),
            Self::ResetPassword { name, token, minutes } => (
                "reset_password",
                "Reset your password",
                context! { name, token, minutes, link => link(public_url, "/reset-password", token) },
            ),
            Self::LoginCode { name, code, minutes, attempts } => {
                ("login_code", "Your sign-in code", context! { name, code, minutes, attempts })
            }
            Self::AccountExists { name } => {
                ("account_exists", "You already have an account", context! { name, link => reset_link })
            }
            Self::AccountLocked { name, failures, minutes } => {
                ("account_locked", "Your account was locked", context! { name, failures, minutes, link => reset_link })
            }
            Self::PasswordChanged { name } => {
                ("password_changed", "Your password was changed", context! { name, link => reset_link })
            }
            Self::Invitation { org, inviter, role, token, days } => (
                "invitation",
                "You are invited to an organization",
                context! { org, inviter, role, token, days, link => link(public_url, "/accept-invite", token) },
            ),
            Self::Notice { name, title, body } => ("notice", *title, context! { name, title, body }),
        };
        let ctx = context! { subject, ..ctx };
        let text = TEMPLATES.get_template(&format!("{template}.txt"))?.render(&ctx)?;
        let html = TEMPLATES.get_template(&format!("{template}.html"))?.render(&ctx)?;
        Ok(Rendered { subject: subject.to_owned(), text, html })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_html_is_escaped() {
        let mails = [
            Mail::VerifyEmail { name: "<b>Ann</b>", token: "tok", hours: 24 },
            Mail::ResetPassword { name: "", token: "tok", minutes: 30 },
            Mail::LoginCode { name: "Ann", code: "123456", minutes: 10, attempts: 3 },
            Mail::AccountExists { name: "Ann" },
            Mail::AccountLocked { name: "Ann", failures: 5, minutes: 30 },
            Mail::PasswordChanged { name: "Ann" },
            Mail::Invitation { org: "<Acme>", inviter: "Ann", role: "member", token: "tok", days: 7 },
            Mail::Notice { name: "Ann", title: "<Acme> key", body: "<Acme>" },
        ];
        for m in mails {
            let r = m.render("https://app.example.com/").expect("renders");
            assert!(!r.text.is_empty() && r.html.contains("</html>"), "{}", r.subject);
            assert!(!r.html.contains("<b>Ann</b>") && !r.html.contains("<Acme>"));
        }
        let r = Mail::VerifyEmail { name: "Ann", token: "abc", hours: 24 }
            .render("https://app.example.com/")
            .expect("renders");
        assert!(r.text.contains("https://app.example.com/verify-email?token=abc"));
        assert!(r.html.contains("href=\"https://app.example.com/verify-email?token=abc\""));
    }
}
