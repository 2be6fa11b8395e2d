//! `trellis create-admin`: makes the first administrator from the command
//! line, on the configured database.

use trellis_schema::values::{Email, NewPassword};

use crate::audit::{Event, actions};
use crate::auth::password::PasswordHasherPool;
use crate::auth::policy::PasswordPolicy;
use crate::config::Config;
use crate::db::models::UserRow;
use trellis_schema::ids::UserId;

/// What `create-admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    /// A new account, with the password given.
    NewAccount { user_id: UserId },
    /// An existing account, now an administrator.
    Promoted { user_id: UserId },
}

/// Makes `email` an administrator: promotes the account if there is one,
/// else creates it (verified) with `password`, which must meet the policy.
pub async fn create_admin(config: &Config, email: &str, password: Option<String>) -> anyhow::Result<Created> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    std::fs::create_dir_all(&config.data_dir)?;
    let db = crate::app::connect_and_migrate(config).await?;
    let event = Event::system(actions::CREATE_ADMIN).row();
    if let Some(user_id) = super::store::promote(&db, &email.normalized(), &event).await? {
        return Ok(Created::Promoted { user_id });
    }
    let Some(password) = password else {
        anyhow::bail!("no account has this address: give a password for the new account (--password-stdin)");
    };
    let password = NewPassword::parse(password).map_err(|e| anyhow::anyhow!("the password {e}"))?;
    let violations = PasswordPolicy::new(config).violations(password.expose(), email.as_str(), "");
    if !violations.is_empty() {
        let list: Vec<String> = violations.into_iter().map(|v| v.message).collect();
        anyhow::bail!("the password does not meet the policy: it {}", list.join("; it "));
    }
    let hasher = tokio::task::spawn_blocking(|| PasswordHasherPool::new(1)).await??;
    let mut user = UserRow::new(&email, hasher.hash(password.expose()).await?, String::new());
    user.is_admin = true;
    user.email_verified = true;
    if !crate::auth::store::insert_user(&db, &user).await? {
        anyhow::bail!("the address was registered meanwhile; run the command again to promote it");
    }
    let mut event = event;
    event.subject_user_id = Some(user.id);
    event.target = Some(format!("user:{}", user.id));
    crate::audit::store::record(&db, event).await?;
    Ok(Created::NewAccount { user_id: user.id })
}
