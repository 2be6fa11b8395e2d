//! A minimal WebSocket client for the load generator: the upgrade, then one
//! text frame out and one back per call. Frames are masked with a zero key
//! (valid, and free), so the client costs next to nothing per call.

use std::net::SocketAddr;

use anyhow::Context;
use hyper::header::HeaderValue;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct WsConn {
    io: BufReader<TcpStream>,
    frame: Vec<u8>,
}

pub async fn connect(addr: SocketAddr, host: &HeaderValue, bearer: Option<&HeaderValue>) -> anyhow::Result<WsConn> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("failed to connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut head = format!(
        "GET /rpc HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        host.to_str()?
    );
    if let Some(bearer) = bearer {
        head.push_str(&format!("Authorization: {}\r\n", bearer.to_str()?));
    }
    head.push_str("\r\n");
    let mut io = BufReader::new(stream);
    io.get_mut().write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(io.read_until(b'\n', &mut answer).await? > 0, "the server closed during the upgrade");
    }
    anyhow::ensure!(answer.starts_with(b"HTTP/1.1 101"), "upgrade refused: {}", String::from_utf8_lossy(&answer));
    Ok(WsConn { io, frame: Vec::with_capacity(512) })
}

impl WsConn {
    /// Sends `body` as one text frame and returns the next text message.
    pub async fn exchange(&mut self, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.send(body).await?;
        self.next().await
    }

    /// Sends `body` as one text frame.
    pub async fn send(&mut self, body: &[u8]) -> anyhow::Result<()> {
        self.frame.clear();
        self.frame.push(0x81);
        match body.len() {
            n if n < 126 => self.frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                self.frame.push(0x80 | 126);
                self.frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.frame.push(0x80 | 127);
                self.frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.frame.extend_from_slice(&[0, 0, 0, 0]);
        self.frame.extend_from_slice(body);
        self.io.get_mut().write_all(&self.frame).await?;
        Ok(())
    }

    /// The next text message (pings answered on the way).
    pub async fn next(&mut self) -> anyhow::Result<Vec<u8>> {
        loop {
            let mut head = [0u8; 2];
            self.io.read_exact(&mut head).await?;
            let len = match head[1] & 0x7f {
                126 => usize::from(self.io.read_u16().await?),
                127 => usize::try_from(self.io.read_u64().await?)?,
                n => usize::from(n),
            };
            let mut payload = vec![0u8; len];
            self.io.read_exact(&mut payload).await?;
            match head[0] & 0x0f {
                1 => return Ok(payload),
                // Answer the server's pings (a masked, empty pong).
                9 => self.io.get_mut().write_all(&[0x8a, 0x80, 0, 0, 0, 0]).await?,
                8 => anyhow::bail!("the server closed the socket: {}", String::from_utf8_lossy(&payload)),
                _ => {}
            }
        }
    }
}
