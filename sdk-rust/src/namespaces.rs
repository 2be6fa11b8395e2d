//! One method per procedure, grouped by namespace: `client.auth().login(params)`,
//! `session.auth().me()`, `client.health().check()`.
//!
//! The table below is the only place to touch when a procedure is added to
//! `trellis_schema::all_procedures!`; a test fails until it is listed.
//! Procedures without params (`Empty`) get a method without arguments.

use std::future::Future;

use trellis_schema::{Procedure, admin, api_keys, audit, auth, health, mfa, orgs, rpc, sessions, users};

use crate::error::Error;
use crate::{Client, Session};

/// Something procedures can be called through: a [`Client`] or a [`Session`].
pub trait Caller: Sync {
    /// Calls procedure `P`.
    fn call<P: Procedure>(&self, params: P::Params)
    -> impl Future<Output = Result<P::Output, Error<P::Reason>>> + Send;
}

impl Caller for Client {
    fn call<P: Procedure>(
        &self,
        params: P::Params,
    ) -> impl Future<Output = Result<P::Output, Error<P::Reason>>> + Send {
        Client::call::<P>(self, params)
    }
}

impl Caller for Session {
    fn call<P: Procedure>(
        &self,
        params: P::Params,
    ) -> impl Future<Output = Result<P::Output, Error<P::Reason>>> + Send {
        Session::call::<P>(self, params)
    }
}

type Output<P> = Result<<P as Procedure>::Output, Error<<P as Procedure>::Reason>>;

macro_rules! namespaces {
    ($(
        $(#[$ns_doc:meta])*
        $accessor:ident => $ns:ident {
            $( $method:ident($($params:ident)?) => $procedure:ty; )*
        }
    )*) => {
        $(
            $(#[$ns_doc])*
            #[derive(Debug)]
            pub struct $ns<'a, C>(&'a C);

            impl<C> Clone for $ns<'_, C> {
                fn clone(&self) -> Self {
                    *self
                }
            }

            impl<C> Copy for $ns<'_, C> {}

            impl<C: Caller> $ns<'_, C> {
                $( namespaces!(@method $method($($params)?) => $procedure); )*
            }
        )*

        impl Client {
            $(
                #[doc = concat!("The `", stringify!($accessor), ".*` procedures.")]
                pub fn $accessor(&self) -> $ns<'_, Self> {
                    $ns(self)
                }
            )*
        }

        impl Session {
            $(
                #[doc = concat!("The `", stringify!($accessor), ".*` procedures, called as this session.")]
                pub fn $accessor(&self) -> $ns<'_, Self> {
                    $ns(self)
                }
            )*
        }

        /// Every procedure the table covers: (namespace accessor, method name).
        #[cfg(test)]
        pub(crate) const COVERED: &[(&str, &str)] =
            &[$($((stringify!($accessor), <$procedure as Procedure>::METHOD),)*)*];
    };
    (@method $method:ident() => $procedure:ty) => {
        #[doc = concat!("Calls [`", stringify!($procedure), "`].")]
        pub async fn $method(self) -> Output<$procedure> {
            self.0.call::<$procedure>(Default::default()).await
        }
    };
    (@method $method:ident(params) => $procedure:ty) => {
        #[doc = concat!("Calls [`", stringify!($procedure), "`].")]
        pub async fn $method(self, params: <$procedure as Procedure>::Params) -> Output<$procedure> {
            self.0.call::<$procedure>(params).await
        }
    };
}

namespaces! {
    /// `health.*`: the server's status.
    health => Health {
        check() => health::Check;
    }
    /// `rpc.*`: the service describing itself.
    rpc => Rpc {
        discover() => rpc::Discover;
    }
    /// `auth.*`: accounts, sign-in and tokens.
    auth => Auth {
        register(params) => auth::Register;
        login(params) => auth::Login;
        refresh(params) => auth::Refresh;
        logout(params) => auth::Logout;
        me() => auth::Me;
        verify_email(params) => auth::VerifyEmail;
        resend_verification(params) => auth::ResendVerification;
        request_login_code(params) => auth::RequestLoginCode;
        login_with_code(params) => auth::LoginWithCode;
        change_password(params) => auth::ChangePassword;
        request_password_reset(params) => auth::RequestPasswordReset;
        reset_password(params) => auth::ResetPassword;
    }
    /// `sessions.*`: the signed-in user's sessions.
    sessions => Sessions {
        list() => sessions::List;
        revoke(params) => sessions::Revoke;
    }
    /// `mfa.*`: TOTP second factor and recovery codes.
    mfa => Mfa {
        enroll_totp(params) => mfa::EnrollTotp;
        confirm_totp(params) => mfa::ConfirmTotp;
        disable(params) => mfa::Disable;
    }
    /// `users.*`: the signed-in user's profile and activity.
    users => Users {
        update_profile(params) => users::UpdateProfile;
        activity(params) => users::Activity;
    }
    /// `admin.*`: system administration of accounts.
    admin => Admin {
        list_users(params) => admin::ListUsers;
        set_user_disabled(params) => admin::SetUserDisabled;
        unlock_user(params) => admin::UnlockUser;
    }
    /// `orgs.*`: organizations, members and invitations.
    orgs => Orgs {
        create(params) => orgs::Create;
        list() => orgs::List;
        get(params) => orgs::Get;
        update(params) => orgs::Update;
        list_members(params) => orgs::ListMembers;
        invite(params) => orgs::Invite;
        accept_invite(params) => orgs::AcceptInvite;
        update_member_role(params) => orgs::UpdateMemberRole;
        remove_member(params) => orgs::RemoveMember;
        list_invites(params) => orgs::ListInvites;
        revoke_invite(params) => orgs::RevokeInvite;
    }
    /// `apiKeys.*`: an organization's API keys.
    api_keys => ApiKeys {
        create(params) => api_keys::Create;
        list(params) => api_keys::List;
        get(params) => api_keys::Get;
        update(params) => api_keys::Update;
        rotate(params) => api_keys::Rotate;
        revoke(params) => api_keys::Revoke;
        usage(params) => api_keys::UsageReport;
        verify(params) => api_keys::Verify;
    }
    /// `audit.*`: an organization's audit trail.
    audit => Audit {
        list(params) => audit::List;
    }
}

#[cfg(test)]
mod tests {
    use super::COVERED;

    #[test]
    fn every_procedure_has_a_method() {
        let missing: Vec<&str> = trellis_schema::procedure::procedures()
            .iter()
            .map(|p| p.method)
            .filter(|m| !COVERED.iter().any(|(_, covered)| covered == m))
            .collect();
        assert!(missing.is_empty(), "add these procedures to the table in namespaces.rs: {missing:?}");
    }

    #[test]
    fn methods_sit_in_their_namespace() {
        for (namespace, method) in COVERED {
            let namespace = if *namespace == "api_keys" { "apiKeys" } else { namespace };
            assert!(method.starts_with(&format!("{namespace}.")), "{method} is listed under {namespace}");
        }
        let mut sorted: Vec<&str> = COVERED.iter().map(|(_, method)| *method).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), COVERED.len(), "a procedure is listed twice");
    }
}
