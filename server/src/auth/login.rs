use trellis_schema::auth::{Login, LoginParams, LoginReason, Tokens};

use super::{session, store};
use crate::rpc::context::Ctx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Login {
    /// An unknown e-mail costs one password verification, like a wrong
    /// password, and gets the same answer.
    async fn handle(ctx: Ctx, p: LoginParams) -> Result<Tokens, HandlerError<LoginReason>> {
        let user = store::find_user_by_email(&ctx.state.db, &p.email.normalized()).await?;
        let valid =
            ctx.state.hasher.verify(p.password.expose(), user.as_ref().map(|u| u.password_hash.as_str())).await?;
        let user = match user {
            Some(u) if valid => u,
            _ => {
                tracing::info!("sign-in refused: invalid credentials");
                return Err(HandlerError::reason(LoginReason::InvalidCredentials));
            }
        };
        if user.disabled {
            return Err(HandlerError::reason(LoginReason::AccountDisabled));
        }
        let tokens = session::start(&ctx, &user).await?;
        tracing::info!(user_id = %user.id, "signed in");
        Ok(tokens)
    }
}
