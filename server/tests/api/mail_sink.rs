//! An SMTP server for the tests: accepts every message on a random local
//! port and keeps it, parsed, for the test to read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Received {
    /// The value of the first `token=` in the text body (the link token).
    pub fn link_token(&self) -> String {
        let at = self.text.find("token=").unwrap_or_else(|| panic!("no link in {}", self.text)) + "token=".len();
        self.text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }

    /// The first line of the text body that is a 6-digit code.
    pub fn code(&self) -> String {
        self.text
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no code in {}", self.text))
            .to_owned()
    }
}

#[derive(Clone)]
pub struct MailSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<Received>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl MailSink {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// A sink on `port` (0: any free port).
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the SMTP sink");
        let port = listener.local_addr().expect("address").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        Self { port, messages, task: Arc::new(task) }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn stop(&self) {
        self.task.abort();
    }

    /// Every message received so far.
    pub fn all(&self) -> Vec<Received> {
        self.messages.lock().expect("sink lock").clone()
    }

    /// Messages to `to` received so far.
    pub fn to(&self, to: &str) -> Vec<Received> {
        self.all().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to))).collect()
    }

    /// Waits (up to 30 s) for the `n`-th message (1-based) to `to` whose
    /// subject contains `subject`.
    pub async fn wait_nth(&self, to: &str, subject: &str, n: usize) -> Received {
        for _ in 0..600 {
            let found: Vec<Received> = self.to(to).into_iter().filter(|m| m.subject.contains(subject)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message {n} to {to} about {subject:?}; received: {:#?}", self.all());
    }

    pub async fn wait_for(&self, to: &str, subject: &str) -> Received {
        self.wait_nth(to, subject, 1).await
    }
}

async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            write.write_all(b"250-sink.test\r\n250 8BITMIME\r\n").await?;
        } else if cmd.starts_with("HELO") || cmd.starts_with("MAIL FROM") || cmd.starts_with("NOOP") {
            write.write_all(b"250 OK\r\n").await?;
        } else if cmd.starts_with("RSET") {
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if cmd.starts_with("RCPT TO") {
            let addr = line.trim_end()[8..].trim().trim_start_matches('<').trim_end_matches('>').to_owned();
            to.push(addr);
            write.write_all(b"250 OK\r\n").await?;
        } else if cmd == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = Vec::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let l = line.strip_prefix('.').unwrap_or(&line);
                raw.extend_from_slice(l.as_bytes());
            }
            store.lock().expect("sink lock").push(parse(std::mem::take(&mut to), &raw));
            write.write_all(b"250 queued\r\n").await?;
        } else if cmd.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}

fn parse(to: Vec<String>, raw: &[u8]) -> Received {
    let mail = mailparse::parse_mail(raw).expect("a MIME message");
    let subject = mailparse::MailHeaderMap::get_first_value(mail.headers.as_slice(), "Subject").unwrap_or_default();
    let (mut text, mut html) = (String::new(), String::new());
    let mut parts = vec![&mail];
    while let Some(p) = parts.pop() {
        match p.ctype.mimetype.as_str() {
            "text/plain" => text = p.get_body().unwrap_or_default(),
            "text/html" => html = p.get_body().unwrap_or_default(),
            _ => parts.extend(p.subparts.iter()),
        }
    }
    Received { to, subject, text, html }
}
