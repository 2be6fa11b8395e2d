//! The `trellis` binary itself: defaults, migrate, create-admin and SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// Kills the child process when the test ends, even by a panic.
pub struct Running(pub std::process::Child);

impl Running {
    /// Ends it with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A command with no Trellis settings from the outer environment.
pub fn trellis(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trellis"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TRELLIS_") || k == "DATABASE_URL" || k == "REDIS_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("TRELLIS_DATA_DIR", data_dir).stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

#[test]
fn create_admin_reads_the_password_from_stdin_and_promotes_on_a_second_run() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = trellis(dir.path())
            .arg("create-admin")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("finishes")
    };
    let weak = run(&["--email", "root@example.com", "--password-stdin"], Some("password\n"));
    assert!(!weak.status.success(), "a common password is refused");
    assert!(String::from_utf8_lossy(&weak.stderr).contains("common"));
    let made = run(&["--email", "root@example.com", "--password-stdin"], Some("a long admin secret\n"));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(String::from_utf8_lossy(&made.stdout).contains("created administrator root@example.com"));
    let again = run(&["--email", "ROOT@example.com"], None);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("is now an administrator"));
    let nobody = run(&["--email", "nobody@example.com"], None);
    assert!(!nobody.status.success(), "a new account needs a password");
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = trellis(dir.path()).arg("migrate").status().expect("runs");
    assert!(status.success());
    assert!(dir.path().join("trellis.db").exists());
    // Running it again is a no-op.
    assert!(trellis(dir.path()).arg("migrate").status().expect("runs").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_a_new_sqlite_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child =
        Running(trellis(dir.path()).env("TRELLIS_LISTEN", format!("127.0.0.1:{port}")).spawn().expect("spawned"));
    let http = crate::helpers::http_client();
    let url = format!("http://127.0.0.1:{port}/rpc");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(resp) =
            http.post(&url).json(&json!({"jsonrpc": "2.0", "method": "health.check", "id": 1})).send().await
        {
            answer = Some(resp.json::<Value>().await.expect("JSON"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = answer.expect("the server answered");
    assert_eq!(answer["result"]["status"], "ok");
    assert!(dir.path().join("trellis.db").exists());
    assert!(dir.path().join("jwt-secret").exists(), "the signing secret is generated and kept");

    let killed = Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.0.try_wait().expect("wait") {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = exited.expect("the server stops on SIGTERM");
    assert!(status.success(), "{status}");
}
