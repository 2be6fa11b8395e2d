//! The `Procedure` trait and the one list of every procedure.

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use ts_rs::TS;

use crate::access::Permission;
use crate::error::{ErrorReason, Reason};

/// Params of a procedure that takes none (`{}`, `[]` or absent), and the
/// result of one that returns nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Whether a call reads, writes or streams. Queries are safe to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
    Subscription,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
            Self::Subscription => "subscription",
        }
    }
}

/// [`Kind`] as a type ([`Procedure::Shape`]), so the server binds a call
/// handler to a query or mutation and a stream handler to a subscription.
pub mod shape {
    /// Implemented by the three kinds only.
    pub trait Shape: Send + Sync + 'static + sealed::Sealed {}

    macro_rules! shapes {
        ($($(#[$doc:meta])* $name:ident),*) => {$(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub enum $name {}
            impl Shape for $name {}
            impl sealed::Sealed for $name {}
        )*};
    }
    shapes! {
        /// [`super::Kind::Query`].
        Query,
        /// [`super::Kind::Mutation`].
        Mutation,
        /// [`super::Kind::Subscription`].
        Subscription
    }

    mod sealed {
        pub trait Sealed {}
    }
}

/// How a subscription resumes: the params field that takes the last item
/// received, and the item field it takes (wire names). A client that
/// reconnects subscribes again with `params[param] = lastItem[item]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub param: &'static str,
    pub item: &'static str,
}

/// Who may call a procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without credentials.
    Public,
    /// Any signed-in user.
    User,
    /// A member (or API key) of the organization named in the params, holding
    /// the permission (or scope).
    Org(Permission),
    /// With an organization named in the params, as [`Access::Org`]; with
    /// none, a system administrator (the call covers the whole server).
    OrgOrAdmin(Permission),
    /// A system administrator.
    Admin,
}

impl Access {
    /// A stable description: `public`, `user`, `org:trades:write`, `admin`.
    pub fn describe(self) -> String {
        match self {
            Self::Public => "public".into(),
            Self::User => "user".into(),
            Self::Org(p) => format!("org:{}", p.as_str()),
            Self::OrgOrAdmin(p) => format!("org:{}|admin", p.as_str()),
            Self::Admin => "admin".into(),
        }
    }

    /// The permission an organization's member or API key needs, for the
    /// rules that name an organization.
    pub const fn org_permission(self) -> Option<Permission> {
        match self {
            Self::Org(p) | Self::OrgOrAdmin(p) => Some(p),
            Self::Public | Self::User | Self::Admin => None,
        }
    }

    /// Reasons the access check itself can answer with.
    pub fn reasons(self) -> &'static [Reason] {
        const SIGNED_IN: &[Reason] = &[
            Reason::CredentialsMissing,
            Reason::TokenExpired,
            Reason::TokenInvalid,
            Reason::ApiKeyInvalid,
            Reason::ApiKeyExpired,
            Reason::ApiKeyRevoked,
            Reason::AccountDisabled,
            // An API key acts for its organization only.
            Reason::MissingScope,
        ];
        const ORG: &[Reason] = &[
            Reason::CredentialsMissing,
            Reason::TokenExpired,
            Reason::TokenInvalid,
            Reason::ApiKeyInvalid,
            Reason::ApiKeyExpired,
            Reason::ApiKeyRevoked,
            Reason::AccountDisabled,
            Reason::MissingPermission,
            Reason::MissingScope,
            Reason::NotFound,
        ];
        const ORG_OR_ADMIN: &[Reason] = &[
            Reason::CredentialsMissing,
            Reason::TokenExpired,
            Reason::TokenInvalid,
            Reason::ApiKeyInvalid,
            Reason::ApiKeyExpired,
            Reason::ApiKeyRevoked,
            Reason::AccountDisabled,
            Reason::MissingPermission,
            Reason::MissingScope,
            Reason::NotFound,
            Reason::AdminRequired,
        ];
        const ADMIN: &[Reason] = &[
            Reason::CredentialsMissing,
            Reason::TokenExpired,
            Reason::TokenInvalid,
            Reason::AccountDisabled,
            Reason::AdminRequired,
        ];
        // A public procedure ignores credentials it cannot use (a stale token
        // sent along with `auth.refresh` is harmless), so its access rule
        // adds no reason.
        const PUBLIC: &[Reason] = &[];
        match self {
            Self::Public => PUBLIC,
            Self::User => SIGNED_IN,
            Self::Org(_) => ORG,
            Self::OrgOrAdmin(_) => ORG_OR_ADMIN,
            Self::Admin => ADMIN,
        }
    }
}

/// The access rules as types, so the server can give each handler the
/// context its rule proves: [`rule::Public`] an optional caller, [`rule::User`]
/// a signed-in user, [`rule::Org`] the organization and who acts in it,
/// [`rule::Admin`] a system administrator, [`rule::OrgOrAdmin`] either of
/// the last two.
pub mod rule {
    /// Implemented by the five rules only.
    pub trait Rule: Send + Sync + 'static + sealed::Sealed {}

    macro_rules! rules {
        ($($(#[$doc:meta])* $name:ident),*) => {$(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub enum $name {}
            impl Rule for $name {}
            impl sealed::Sealed for $name {}
        )*};
    }
    rules! {
        /// [`super::Access::Public`].
        Public,
        /// [`super::Access::User`].
        User,
        /// [`super::Access::Org`].
        Org,
        /// [`super::Access::Admin`].
        Admin,
        /// [`super::Access::OrgOrAdmin`].
        OrgOrAdmin
    }

    mod sealed {
        pub trait Sealed {}
    }
}

/// Reasons any call can meet, whatever the procedure: bad params, rate
/// limits, a dependency down, an internal fault.
pub const COMMON_REASONS: &[Reason] = &[
    Reason::Validation,
    Reason::RateLimited,
    Reason::DatabaseUnavailable,
    Reason::CacheUnavailable,
    Reason::ShuttingDown,
    Reason::Internal,
];

/// One callable procedure of the API.
pub trait Procedure: Send + Sync + 'static {
    /// The JSON-RPC method name, `namespace.procedure`.
    const METHOD: &'static str;
    const KIND: Kind;
    /// [`Procedure::KIND`] as a type (a [`shape`]).
    type Shape: shape::Shape;
    const ACCESS: Access;
    /// [`Procedure::ACCESS`] as a type (a [`rule`]).
    type Rule: rule::Rule;
    /// One line for the reference documentation.
    const SUMMARY: &'static str;
    type Params: Serialize + DeserializeOwned + TS + JsonSchema + Send + 'static;
    /// The result of a call; for a subscription, the type of each item.
    type Output: Serialize + DeserializeOwned + TS + JsonSchema + Send + 'static;
    /// This procedure's own error reasons.
    type Reason: ErrorReason + Serialize + TS;
    /// For an `Access::Org` procedure, what its params name to say which
    /// organization the call is about: an [`OrgId`](crate::ids::OrgId), or the
    /// id of an object of that organization (resolved to it before the
    /// permission check); [`NoOrg`](crate::access::NoOrg) for the others.
    type InOrg: Send + Sync + 'static;
    /// For a subscription: the method that ends one (its params are
    /// `{ subscription }`, the id the subscribe call answered).
    const UNSUBSCRIBE: Option<&'static str> = None;
    /// For a subscription: how a client resumes after the last item it got.
    const RESUME: Option<Resume> = None;

    /// For a subscription: sets the params to resume after `item`.
    fn resume_after(_params: &mut Self::Params, _item: &Self::Output) {}

    /// Whether [`Procedure::org_of`] names the organization (every
    /// `Access::Org` procedure does; a test checks).
    const NAMES_ORG: bool = false;

    /// For an `Access::Org` procedure: what its params say of the organization.
    fn org_of(_params: &Self::Params) -> Option<Self::InOrg> {
        None
    }

    /// Example params, for the reference and for tests that walk every
    /// procedure (ids in them are the `EXAMPLE` of their type).
    fn example() -> Option<Self::Params> {
        None
    }

    /// Every reason a call of this procedure can answer with.
    fn all_reasons() -> Vec<Reason> {
        let mut all: Vec<Reason> = <Self::Reason as ErrorReason>::ALL.iter().map(|r| r.reason()).collect();
        for r in Self::ACCESS.reasons().iter().chain(COMMON_REASONS) {
            if !all.contains(r) {
                all.push(*r);
            }
        }
        all
    }
}

/// What a visitor learns of each procedure without naming its type.
#[derive(Debug, Clone)]
pub struct ProcedureInfo {
    pub method: &'static str,
    pub kind: Kind,
    pub access: Access,
    pub summary: &'static str,
    pub reasons: Vec<Reason>,
    /// [`Procedure::UNSUBSCRIBE`].
    pub unsubscribe: Option<&'static str>,
    /// [`Procedure::RESUME`].
    pub resume: Option<Resume>,
    /// [`Procedure::example`], as JSON.
    pub example: Option<serde_json::Value>,
}

impl ProcedureInfo {
    pub fn of<P: Procedure>() -> Self {
        Self {
            method: P::METHOD,
            kind: P::KIND,
            access: P::ACCESS,
            summary: P::SUMMARY,
            reasons: P::all_reasons(),
            unsubscribe: P::UNSUBSCRIBE,
            resume: P::RESUME,
            example: P::example().map(|p| serde_json::to_value(p).expect("example params serialize")),
        }
    }
}

/// Walks the list of procedures with their types (for code generation).
pub trait ProcedureVisitor {
    fn visit<P: Procedure>(&mut self);
}

/// Calls `$callback! { path::To::Procedure, ... }` with every procedure of the
/// API, once each. The server uses it to bind a handler to each (a missing
/// handler fails to compile); the generator and OpenRPC walk it through
/// [`for_each_procedure`]. Each namespace module lists its own procedures, in
/// a `__procedures_<namespace>` macro at its end (adding a procedure to a
/// namespace is one line there); this walks the namespaces, in this order.
#[macro_export]
macro_rules! all_procedures {
    ($callback:ident) => {
        $crate::__collect_procedures! { $callback; []; __procedures_health __procedures_rpc __procedures_auth __procedures_sessions __procedures_mfa __procedures_users __procedures_admin __procedures_orgs __procedures_api_keys __procedures_audit __procedures_notifications __procedures_webhooks __procedures_performance __procedures_lots __procedures_trades __procedures_trade_parse }
    };
}

/// Appends each namespace's procedures, then calls the callback with all.
#[doc(hidden)]
#[macro_export]
macro_rules! __collect_procedures {
    ($callback:ident; [$($acc:tt)*]; ) => {
        $callback! { $($acc)* }
    };
    ($callback:ident; [$($acc:tt)*]; $namespace:ident $($rest:ident)*) => {
        $crate::$namespace! { $callback; [$($acc)*]; $($rest)* }
    };
}

macro_rules! visit_all {
    ($($p:path),* $(,)?) => {
        /// Visits every procedure of the API in a fixed order.
        pub fn for_each_procedure<V: ProcedureVisitor>(visitor: &mut V) {
            $( visitor.visit::<$p>(); )*
        }
    };
}
crate::all_procedures!(visit_all);

/// Metadata of every procedure, in the order of the list.
pub fn procedures() -> Vec<ProcedureInfo> {
    struct Collect(Vec<ProcedureInfo>);
    impl ProcedureVisitor for Collect {
        fn visit<P: Procedure>(&mut self) {
            self.0.push(ProcedureInfo::of::<P>());
        }
    }
    let mut c = Collect(Vec::new());
    for_each_procedure(&mut c);
    c.0
}

/// Declares a procedure type and its `Procedure` impl in one place.
///
/// `access:` is `Public`, `User`, `Admin`, `Org(Permission::X)` or
/// `OrgOrAdmin(Permission::X)`. An `Org` procedure says which organization
/// its params name with `org: Type = |p| ...` (an `OrgId`, or the id of an
/// object whose namespace resolves it to its organization); an `OrgOrAdmin`
/// one with `org: OrgOrServer = |p| OrgOrServer(p.org_id)`. `example:` gives example params.
///
/// A subscription (`kind: Subscription`) names the item type as `output:`
/// and adds `unsubscribe: "ns.unsubscribe", resume: param = item` after its
/// reasons: the method that ends one, and which params field resumes after
/// which item field (the field is an `Option` of the item field's type).
#[macro_export]
macro_rules! procedure {
    (
        $(#[$meta:meta])*
        $name:ident {
            method: $method:literal,
            kind: $kind:ident,
            access: $rule:ident $(($permission:expr))?,
            params: $params:ty,
            output: $output:ty,
            $(org: $in_org:ty = $org:expr,)?
            reasons: $reason:ty
            $(, unsubscribe: $unsubscribe:literal, resume: $resume_param:ident = $resume_item:ident)?
            $(, example: $example:expr)? $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $crate::procedure::Procedure for $name {
            const METHOD: &'static str = $method;
            const KIND: $crate::procedure::Kind = $crate::procedure::Kind::$kind;
            type Shape = $crate::procedure::shape::$kind;
            const ACCESS: $crate::procedure::Access = $crate::procedure::Access::$rule $(($permission))?;
            type Rule = $crate::procedure::rule::$rule;
            const SUMMARY: &'static str = $crate::procedure::first_doc_line(&[$(stringify!($meta)),*]);
            type Params = $params;
            type Output = $output;
            type Reason = $reason;
            $crate::procedure!(@in_org $params; $($in_org = $org)?);
            $(
                const UNSUBSCRIBE: Option<&'static str> = Some($unsubscribe);
                const RESUME: Option<$crate::procedure::Resume> = Some($crate::procedure::Resume {
                    param: $crate::procedure::camel_case(stringify!($resume_param)),
                    item: $crate::procedure::camel_case(stringify!($resume_item)),
                });
                fn resume_after(params: &mut Self::Params, item: &Self::Output) {
                    params.$resume_param = Some(item.$resume_item.clone());
                }
            )?
            $(
                fn example() -> Option<Self::Params> {
                    Some($example)
                }
            )?
        }
    };
    (@in_org $params:ty; ) => {
        type InOrg = $crate::access::NoOrg;
    };
    (@in_org $params:ty; $in_org:ty = $org:expr) => {
        type InOrg = $in_org;
        const NAMES_ORG: bool = true;
        fn org_of(p: &Self::Params) -> Option<$in_org> {
            let f: fn(&$params) -> $in_org = $org;
            Some(f(p))
        }
    };
}

/// A one-word snake_case field name as its wire name (`after` stays
/// `after`); longer names are refused at compile time, which keeps this a
/// `const fn`.
#[doc(hidden)]
pub const fn camel_case(field: &'static str) -> &'static str {
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        assert!(b[i] != b'_', "a resume field is one word");
        i += 1;
    }
    field
}

/// The text of the first `doc = "..."` attribute, for `SUMMARY`.
#[doc(hidden)]
pub const fn first_doc_line(metas: &[&'static str]) -> &'static str {
    let mut i = 0;
    while i < metas.len() {
        let m = metas[i].as_bytes();
        // stringify!(doc = "text") -> `doc = " text"`
        if m.len() > 8 && m[0] == b'd' && m[1] == b'o' && m[2] == b'c' {
            let mut start = 0;
            while start < m.len() && m[start] != b'"' {
                start += 1;
            }
            start += 1;
            while start < m.len() && m[start] == b' ' {
                start += 1;
            }
            let end = m.len() - 1;
            if start < end {
                let (_, tail) = metas[i].split_at(start);
                let (text, _) = tail.split_at(end - start);
                return text;
            }
        }
        i += 1;
    }
    ""
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subscription_names_its_unsubscribe_method_and_how_it_resumes() {
        for p in super::procedures() {
            let stream = p.kind == super::Kind::Subscription;
            assert_eq!(p.unsubscribe.is_some(), stream, "{}", p.method);
            assert_eq!(p.resume.is_some(), stream, "{}", p.method);
            if let Some(u) = p.unsubscribe {
                assert!(
                    super::procedures().iter().any(|q| q.method == u),
                    "{} ends with {u}, which is listed",
                    p.method
                );
            }
        }
    }

    #[test]
    fn every_org_procedure_names_its_org() {
        struct Check(Vec<&'static str>);
        impl super::ProcedureVisitor for Check {
            fn visit<P: super::Procedure>(&mut self) {
                if P::ACCESS.org_permission().is_some() != P::NAMES_ORG {
                    self.0.push(P::METHOD);
                }
            }
        }
        let mut c = Check(Vec::new());
        super::for_each_procedure(&mut c);
        assert!(c.0.is_empty(), "org-scoped procedures must say which org they are about (and only they): {:?}", c.0);
    }
}
