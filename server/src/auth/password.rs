//! Password hashing: argon2id with the OWASP parameters, run on the blocking
//! pool with a bound on how many run at once (each takes 19 MiB and a core).

use std::sync::Arc;

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

/// OWASP: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub(crate) struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified when the account does not
    /// exist, so that an unknown e-mail costs exactly what a wrong password does.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    #[allow(clippy::unwrap_used)] // constant, valid parameters
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    let hash = argon2().hash_password(password).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

impl PasswordHasherPool {
    pub(crate) fn new(concurrency: usize) -> anyhow::Result<Self> {
        let random: [u8; 32] = rand::random();
        let dummy_hash = hash_blocking(&random).context("failed to prepare the dummy password hash")?;
        Ok(Self { permits: Arc::new(Semaphore::new(concurrency)), dummy_hash: dummy_hash.into() })
    }

    /// Hashes a new password (PHC string).
    pub(crate) async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes())).await.context("hashing task failed")?
    }

    /// Checks `password` against `phc`; with `None`, checks it against the
    /// dummy hash (always false) at the same cost.
    pub(crate) async fn verify(&self, password: &str, phc: Option<&str>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let password = password.to_owned();
        let known = phc.is_some();
        let phc = phc.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let ok =
            tokio::task::spawn_blocking(move || match argon2().verify_password(password.as_bytes(), phc.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(anyhow::anyhow!("argon2 verify: {e}")),
            })
            .await
            .context("verification task failed")??;
        Ok(ok && known)
    }
}
