use trellis_schema::auth::{Register, RegisterParams, RegisterResult};
use trellis_schema::error::NoReason;
use uuid::Uuid;

use super::store;
use crate::db::models::{UserRow, now};
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Register {
    /// Whether or not the address is taken, the caller gets the same answer
    /// after the same work (one hash, one insert attempt): registering tells
    /// nobody which addresses have accounts.
    async fn handle(ctx: Ctx, p: RegisterParams) -> Result<RegisterResult, HandlerError<NoReason>> {
        let hash = ctx.state.hasher.hash(p.password.expose()).await?;
        let t = now();
        let id = Uuid::now_v7();
        let row = UserRow {
            id: id.to_string(),
            email: p.email.as_str().to_owned(),
            email_key: p.email.normalized(),
            password_hash: hash,
            display_name: p.display_name.map(String::from).unwrap_or_default(),
            email_verified: false,
            mfa_enabled: false,
            is_admin: false,
            disabled: false,
            created_at: t,
            updated_at: t,
        };
        let created = store::insert_user(&ctx.state.db, &row).await?;
        if created {
            tracing::info!(user_id = %id, "account registered");
        } else {
            tracing::info!("registration for an address that already has an account");
        }
        Ok(RegisterResult { user_id: id, verification_required: false })
    }
}
