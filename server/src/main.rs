//! `trellis`: serve (the default), migrate, or create-admin.

use clap::{Parser, Subcommand};
use trellis_server::admin::create::Created;
use trellis_server::{Application, Config, app, telemetry};

#[derive(Parser)]
#[command(name = "trellis", version, about = "The Trellis JSON-RPC server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve JSON-RPC over HTTP and WebSocket (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Make an account a system administrator, creating it if needed.
    CreateAdmin {
        /// The administrator's e-mail address.
        #[arg(long)]
        email: String,
        /// Read the new account's password from the first line of stdin
        /// (needed only when no account has this address).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(cli.config).await?.run_until_stopped(shutdown_signal()).await,
        Command::Migrate => {
            std::fs::create_dir_all(&cli.config.data_dir)?;
            app::connect_and_migrate(&cli.config).await.map(drop)
        }
        Command::CreateAdmin { email, password_stdin } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            match trellis_server::admin::create::create_admin(&cli.config, &email, password).await? {
                Created::NewAccount { user_id } => println!("created administrator {email} ({user_id})"),
                Created::Promoted { user_id } => println!("{email} ({user_id}) is now an administrator"),
            }
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
