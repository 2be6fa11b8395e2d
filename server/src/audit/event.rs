//! Building an audit event from the call that causes it.

use trellis_schema::audit::{ActorKind, Outcome};

use crate::access::RequestMeta;
use crate::db::models::{AuditEventRow, now};
use trellis_schema::ids::{AuditEventId, OrgId, UserId};

/// The actions recorded, by name.
pub(crate) mod actions {
    pub(crate) const REGISTER: &str = "auth.register";
    pub(crate) const VERIFY_EMAIL: &str = "auth.verifyEmail";
    pub(crate) const RESEND_VERIFICATION: &str = "auth.resendVerification";
    pub(crate) const LOGIN: &str = "auth.login";
    pub(crate) const LOGIN_WITH_CODE: &str = "auth.loginWithCode";
    pub(crate) const REQUEST_LOGIN_CODE: &str = "auth.requestLoginCode";
    pub(crate) const LOGOUT: &str = "auth.logout";
    pub(crate) const REFRESH_REUSED: &str = "auth.refreshTokenReused";
    pub(crate) const CHANGE_PASSWORD: &str = "auth.changePassword";
    pub(crate) const REQUEST_PASSWORD_RESET: &str = "auth.requestPasswordReset";
    pub(crate) const RESET_PASSWORD: &str = "auth.resetPassword";
    pub(crate) const ACCOUNT_LOCKED: &str = "account.locked";
    pub(crate) const SESSION_REVOKED: &str = "sessions.revoke";
    pub(crate) const MFA_ENROLL: &str = "mfa.enrollTotp";
    pub(crate) const MFA_CONFIRM: &str = "mfa.confirmTotp";
    pub(crate) const MFA_DISABLE: &str = "mfa.disable";
    pub(crate) const UPDATE_PROFILE: &str = "users.updateProfile";
    pub(crate) const SET_USER_DISABLED: &str = "admin.setUserDisabled";
    pub(crate) const UNLOCK_USER: &str = "admin.unlockUser";
    pub(crate) const CREATE_ADMIN: &str = "admin.create";
}

/// An audit event under construction. Starts as a success by an anonymous
/// caller; the builder methods fill in the rest.
pub(crate) struct Event(AuditEventRow);

impl Event {
    /// An event of `action`, with the caller's IP, user agent and request id.
    pub(crate) fn new(meta: &RequestMeta, action: &str) -> Self {
        Self(AuditEventRow {
            id: AuditEventId::new(),
            at: now(),
            org_id: None,
            actor_kind: kind(ActorKind::User).to_owned(),
            actor_id: None,
            subject_user_id: None,
            action: action.to_owned(),
            target: None,
            outcome: outcome(Outcome::Success).to_owned(),
            detail: None,
            ip: meta.client_ip().map(|ip| ip.to_string()),
            user_agent: meta.user_agent.as_deref().map(|ua| truncate(ua, 512)),
            request_id: Some(meta.request_id.to_string()),
        })
    }

    /// An event the server causes by itself (a command-line tool, a job).
    pub(crate) fn system(action: &str) -> Self {
        let mut e = Self::new(
            &RequestMeta { request_id: "".into(), client: None, user_agent: None, principal: Ok(None), budget: None },
            action,
        );
        e.0.actor_kind = kind(ActorKind::System).to_owned();
        e.0.request_id = None;
        e
    }

    /// Done by this user, to their own account.
    pub(crate) fn by_user(mut self, user_id: UserId) -> Self {
        self.0.actor_id = Some(user_id.into());
        self.0.subject_user_id = Some(user_id);
        self
    }

    /// Done by `actor` (an administrator) to the account of `subject`.
    pub(crate) fn by_admin(mut self, actor: UserId, subject: UserId) -> Self {
        self.0.actor_id = Some(actor.into());
        self.0.subject_user_id = Some(subject);
        self.0.target = Some(format!("user:{subject}"));
        self
    }

    /// Done in an organization, by a member or one of its API keys.
    pub(crate) fn in_org(mut self, org: &crate::access::OrgAccess) -> Self {
        use crate::access::OrgActor;
        self.0.org_id = Some(org.org_id);
        match org.actor {
            OrgActor::Member(user) => {
                self.0.actor_kind = kind(ActorKind::User).to_owned();
                self.0.actor_id = Some(user.user_id.into());
            }
            OrgActor::ApiKey { key_id, .. } => {
                self.0.actor_kind = kind(ActorKind::ApiKey).to_owned();
                self.0.actor_id = Some(key_id.into());
            }
        }
        self
    }

    /// In this organization (for events not made through [`Event::in_org`]).
    pub(crate) fn org(mut self, org_id: OrgId) -> Self {
        self.0.org_id = Some(org_id);
        self
    }

    /// About this account, by a caller not (yet) proven to be its owner.
    pub(crate) fn about(mut self, user_id: UserId) -> Self {
        self.0.subject_user_id = Some(user_id);
        self
    }

    pub(crate) fn target(mut self, target: String) -> Self {
        self.0.target = Some(target);
        self
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Refused, for `reason` (an error reason's wire string).
    pub(crate) fn failed(mut self, reason: &str) -> Self {
        self.0.outcome = outcome(Outcome::Failure).to_owned();
        self.0.detail = Some(reason.to_owned());
        self
    }

    pub(crate) fn row(self) -> AuditEventRow {
        self.0
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

pub(crate) fn kind(k: ActorKind) -> &'static str {
    match k {
        ActorKind::User => "user",
        ActorKind::ApiKey => "apiKey",
        ActorKind::System => "system",
    }
}

pub(crate) fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    }
}
