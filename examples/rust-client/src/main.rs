//! Run it: `cargo run -p trellis-example-client -- http://127.0.0.1:8080/rpc` (with a server up).
//!
//! Registers an account with a random e-mail, signs in, asks `auth.me` who
//! is signed in and prints the user. The URL comes from the first argument,
//! else `TRELLIS_URL`, else `http://127.0.0.1:8080/rpc`.

use std::process::ExitCode;

use trellis_client::Client;
use trellis_schema::auth::{LoginParams, RegisterParams};
use trellis_schema::values::{Email, NewPassword, Password};

const DEFAULT_URL: &str = "http://127.0.0.1:8080/rpc";
const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() -> ExitCode {
    let url = std::env::args().nth(1).or_else(|| std::env::var("TRELLIS_URL").ok()).unwrap_or(DEFAULT_URL.into());
    match run(&url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder(url).build()?;
    let email = format!("example-{}@example.com", uuid::Uuid::now_v7().simple());

    let registered = client
        .auth()
        .register(RegisterParams {
            email: Email::parse(&email)?,
            password: NewPassword::parse(PASSWORD.to_owned())?,
            display_name: None,
        })
        .await?;
    println!("registered {email} (user {})", registered.user_id);

    let session = client
        .sign_in(LoginParams {
            email: Email::parse(&email)?,
            password: Password::try_from(PASSWORD.to_owned())?,
            otp: None,
        })
        .await?;
    let me = session.auth().me().await?;
    let name = if me.user.display_name.is_empty() { "(no display name)" } else { &me.user.display_name };
    println!("signed in as {name} <{}>, id {}", me.user.email, me.user.id);
    println!("member of {} organization(s)", me.memberships.len());
    session.logout().await?;
    Ok(())
}
