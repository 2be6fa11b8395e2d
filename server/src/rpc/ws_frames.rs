//! WebSocket framing (RFC 6455), server side: the handshake's accept key,
//! reading a client's frames into messages, and writing frames. Ours rather
//! than a library's because the server must close a socket with a code and
//! a reason of its choosing ("session ended", "token expired"), which
//! jsonrpsee 0.26 and the soketto it uses cannot send.

use base64::Engine;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt};

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Close codes the server sends.
pub(crate) mod close {
    pub const NORMAL: u16 = 1000;
    /// Server shutting down, or the peer went silent.
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const TOO_BIG: u16 = 1009;
    /// The session behind the connection ended (sign-out, revocation,
    /// password reset, account disabled).
    pub const SESSION_ENDED: u16 = 4001;
    /// The connection's access token expired (and no fresh one came through
    /// `rpc.authenticate`).
    pub const TOKEN_EXPIRED: u16 = 4002;
}

/// What a client sent: a whole message or a control frame.
pub(crate) enum Incoming {
    /// A text or binary message, reassembled from its fragments.
    Message(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

#[derive(Debug)]
pub(crate) enum FrameError {
    Io,
    /// Answered with a close frame of this code and reason.
    Protocol(u16, &'static str),
}

/// Reads a client's frames.
pub(crate) struct FrameReader<R> {
    io: R,
    max_message: usize,
    partial: Option<Vec<u8>>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(io: R, max_message: usize) -> Self {
        Self { io, max_message, partial: None }
    }

    /// The next message or control frame.
    pub(crate) async fn next(&mut self) -> Result<Incoming, FrameError> {
        loop {
            let mut head = [0u8; 2];
            self.io.read_exact(&mut head).await.map_err(|_| FrameError::Io)?;
            let fin = head[0] & 0x80 != 0;
            if head[0] & 0x70 != 0 {
                return Err(FrameError::Protocol(close::PROTOCOL_ERROR, "reserved bits set"));
            }
            let opcode = head[0] & 0x0f;
            if head[1] & 0x80 == 0 {
                return Err(FrameError::Protocol(close::PROTOCOL_ERROR, "client frames must be masked"));
            }
            let len = match head[1] & 0x7f {
                126 => u64::from(self.io.read_u16().await.map_err(|_| FrameError::Io)?),
                127 => self.io.read_u64().await.map_err(|_| FrameError::Io)?,
                n => u64::from(n),
            };
            let control = opcode >= 8;
            if control && (!fin || len > 125) {
                return Err(FrameError::Protocol(close::PROTOCOL_ERROR, "bad control frame"));
            }
            let so_far = self.partial.as_ref().map_or(0, Vec::len);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if !control && len.saturating_add(so_far) > self.max_message {
                return Err(FrameError::Protocol(close::TOO_BIG, "message too big"));
            }
            let mut mask = [0u8; 4];
            self.io.read_exact(&mut mask).await.map_err(|_| FrameError::Io)?;
            let mut payload = vec![0u8; len];
            self.io.read_exact(&mut payload).await.map_err(|_| FrameError::Io)?;
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            match opcode {
                0 => {
                    let Some(mut message) = self.partial.take() else {
                        return Err(FrameError::Protocol(close::PROTOCOL_ERROR, "continuation without a message"));
                    };
                    message.extend_from_slice(&payload);
                    if fin {
                        return Ok(Incoming::Message(message));
                    }
                    self.partial = Some(message);
                }
                1 | 2 => {
                    if self.partial.is_some() {
                        return Err(FrameError::Protocol(close::PROTOCOL_ERROR, "a message inside a message"));
                    }
                    if fin {
                        return Ok(Incoming::Message(payload));
                    }
                    self.partial = Some(payload);
                }
                8 => {
                    return match payload.len() {
                        0 => Ok(Incoming::Close(None)),
                        1 => Err(FrameError::Protocol(close::PROTOCOL_ERROR, "bad close frame")),
                        _ => Ok(Incoming::Close(Some(u16::from_be_bytes([payload[0], payload[1]])))),
                    };
                }
                9 => return Ok(Incoming::Ping(payload)),
                10 => return Ok(Incoming::Pong),
                _ => return Err(FrameError::Protocol(close::PROTOCOL_ERROR, "unknown opcode")),
            }
        }
    }
}

pub(crate) const TEXT: u8 = 1;
pub(crate) const CLOSE: u8 = 8;
pub(crate) const PING: u8 = 9;
pub(crate) const PONG: u8 = 10;

/// One unmasked, unfragmented frame (a server's).
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// A close frame with a code and a reason (at most 123 bytes).
pub(crate) fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![first, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn the_accept_key_of_the_rfc_example() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[tokio::test]
    async fn fragments_are_joined_and_control_frames_pass_between_them() {
        let mut bytes = masked(0x01, b"{\"a\":");
        bytes.extend(masked(0x89, b"hi"));
        bytes.extend(masked(0x80, b"1}"));
        bytes.extend(masked(0x88, &1000u16.to_be_bytes()));
        let mut r = FrameReader::new(&bytes[..], 1024);
        assert!(matches!(r.next().await, Ok(Incoming::Ping(p)) if p == b"hi"));
        assert!(matches!(r.next().await, Ok(Incoming::Message(m)) if m == b"{\"a\":1}"));
        assert!(matches!(r.next().await, Ok(Incoming::Close(Some(1000)))));
    }

    #[tokio::test]
    async fn unmasked_and_oversized_frames_are_refused() {
        let unmasked = [0x81u8, 0x01, b'x'];
        let mut r = FrameReader::new(&unmasked[..], 1024);
        assert!(matches!(r.next().await, Err(FrameError::Protocol(close::PROTOCOL_ERROR, _))));
        let big = masked(0x81, &[b'x'; 100]);
        let mut r = FrameReader::new(&big[..], 10);
        assert!(matches!(r.next().await, Err(FrameError::Protocol(close::TOO_BIG, _))));
    }

    #[test]
    fn frames_carry_their_length() {
        assert_eq!(frame(TEXT, b"ok"), vec![0x81, 2, b'o', b'k']);
        assert_eq!(&frame(TEXT, &[0; 300])[..4], &[0x81, 126, 1, 44]);
        assert_eq!(close_frame(4001, "session ended")[..4], [0x88, 15, 0x0f, 0xa1]);
    }
}
