//! WebSocket (RFC 6455) pieces the front needs: the upgrade answer, server
//! frames (unmasked, built once and shared), and client frames (masked,
//! parsed from the connection's read buffer). Headers are tungstenite's
//! `FrameHeader`; the rest is small enough to keep here.

use std::io::Cursor;
use std::sync::Arc;

use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The largest client message accepted (ops are tiny).
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Whether `key` is a `Sec-WebSocket-Key` RFC 6455 §4.2.1 allows: 16
/// bytes in base64, which is 22 base64 characters and `==` (surrounding
/// spaces aside).
pub fn is_valid_key(key: &[u8]) -> bool {
    let key = key.trim_ascii();
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key[..22].iter().all(base64) && &key[22..] == b"=="
}

/// The `101 Switching Protocols` answer to a valid upgrade with `key`.
pub fn upgrade_response(key: &[u8]) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key)
    )
    .into_bytes()
}

fn frame(opcode: OpCode, payload: &[u8]) -> Arc<[u8]> {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let mut out = Vec::with_capacity(payload.len() + 10);
    header
        .format(payload.len() as u64, &mut out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload);
    out.into()
}

/// A final text frame carrying `payload` (UTF-8 JSON).
pub fn text_frame(payload: &[u8]) -> Arc<[u8]> {
    frame(OpCode::Data(Data::Text), payload)
}

/// A pong answering a ping's `payload`.
pub fn pong_frame(payload: &[u8]) -> Arc<[u8]> {
    frame(OpCode::Control(Control::Pong), payload)
}

/// A ping.
pub fn ping_frame() -> Arc<[u8]> {
    frame(OpCode::Control(Control::Ping), b"")
}

/// A close frame with a status `code` and a short `reason`.
pub fn close_frame(code: u16, reason: &str) -> Arc<[u8]> {
    let mut payload = code.to_be_bytes().to_vec();
    // Control frames carry at most 125 bytes.
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    frame(OpCode::Control(Control::Close), &payload)
}

/// A frame from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// A data frame (text, binary or continuation) and whether it is final.
    Data {
        /// Text, binary or continue.
        kind: Data,
        /// The last frame of its message.
        fin: bool,
        /// The unmasked payload.
        payload: Vec<u8>,
    },
    /// Ping with its payload.
    Ping(Vec<u8>),
    /// Pong.
    Pong,
    /// Close, with the code if one was given.
    Close(Option<u16>),
}

/// Why a client's bytes end the connection, with the close code to send.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// 1002 (protocol error), 1007 (text not UTF-8) or 1009 (too big).
    pub code: u16,
    /// What was wrong.
    pub reason: &'static str,
}

/// The code of a close frame's payload: none, or a code a peer may send
/// (RFC 6455 §7.4: 1000–1003, 1007–1014, 3000–4999) and a UTF-8 reason.
fn close_code(payload: &[u8]) -> Result<Option<u16>, ProtocolError> {
    let bad = |reason| ProtocolError { code: 1002, reason };
    match payload {
        [] => Ok(None),
        [_] => Err(bad("a close payload of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Err(bad("a close code no peer may send"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(ProtocolError {
                    code: 1007,
                    reason: "close reason is not UTF-8",
                });
            }
            Ok(Some(code))
        }
    }
}

/// Parses one frame from the start of `buf`: `Ok(None)` if it is not all
/// there yet, else the frame and the bytes it used.
pub fn parse_client_frame(buf: &[u8]) -> Result<Option<(ClientFrame, usize)>, ProtocolError> {
    let bad = |reason| ProtocolError { code: 1002, reason };
    let mut cursor = Cursor::new(buf);
    let (header, length) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(_) => return Err(bad("unreadable frame header")),
    };
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(bad("reserved bits set"));
    }
    let Some(mask) = header.mask else {
        return Err(bad("client frames must be masked"));
    };
    // RFC 6455 §5.2: a 64-bit length's most significant bit must be 0.
    if length >> 63 == 1 {
        return Err(bad("a 64-bit payload length with its top bit set"));
    }
    if length > MAX_CLIENT_MESSAGE as u64 {
        return Err(ProtocolError {
            code: 1009,
            reason: "frame too large",
        });
    }
    let start = cursor.position() as usize;
    let end = start + length as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let mut payload = buf[start..end].to_vec();
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    let frame = match header.opcode {
        OpCode::Data(Data::Reserved(_)) | OpCode::Control(Control::Reserved(_)) => {
            return Err(bad("reserved opcode"))
        }
        OpCode::Data(kind) => ClientFrame::Data {
            kind,
            fin: header.is_final,
            payload,
        },
        OpCode::Control(_) if !header.is_final || length > 125 => {
            return Err(bad("fragmented or oversized control frame"))
        }
        OpCode::Control(Control::Ping) => ClientFrame::Ping(payload),
        OpCode::Control(Control::Pong) => ClientFrame::Pong,
        OpCode::Control(Control::Close) => ClientFrame::Close(close_code(&payload)?),
    };
    Ok(Some((frame, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_sixteen_bytes_in_base64() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_valid_key(b" AAAAAAAAAAAAAAAAAAAA/+== "));
        for bad in [
            &b"abc"[..],
            b"",
            b"dGhlIHNhbXBsZSBub25jZQ",
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25jZQ===",
            b"dGhlIHNhbXBsZSBub25jZ===",
            b"dGhlIHNhbXBsZSBub25jZ-==",
            b"dGhlIHNhbXBsZSBub25jZSBhZ2Fpbg==",
        ] {
            assert!(!is_valid_key(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn client_frames_are_unmasked_and_partial_ones_wait() {
        let bytes = masked(0x1, b"{\"op\":\"subscribe\"}");
        assert_eq!(parse_client_frame(&bytes[..5]), Ok(None));
        let (frame, used) = parse_client_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            frame,
            ClientFrame::Data {
                kind: Data::Text,
                fin: true,
                payload: b"{\"op\":\"subscribe\"}".to_vec()
            }
        );
        let (frame, _) = parse_client_frame(&masked(0x8, &1000u16.to_be_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(frame, ClientFrame::Close(Some(1000)));
    }

    #[test]
    fn unmasked_client_frames_are_a_protocol_error() {
        let error = parse_client_frame(&[0x81, 0x02, b'h', b'i']).unwrap_err();
        assert_eq!(error.code, 1002);
    }

    #[test]
    fn a_length_past_2_63_is_a_protocol_error_and_one_past_the_limit_too_large() {
        let frame =
            |length: u64| [&[0x81, 0xFF][..], &length.to_be_bytes(), &[1, 2, 3, 4]].concat();
        let error = parse_client_frame(&frame(1 << 63)).unwrap_err();
        assert_eq!(
            (error.code, error.reason),
            (1002, "a 64-bit payload length with its top bit set")
        );
        let error = parse_client_frame(&frame(1 << 62)).unwrap_err();
        assert_eq!((error.code, error.reason), (1009, "frame too large"));
    }

    #[test]
    fn server_frames_are_unmasked_with_the_right_length() {
        let frame = text_frame(&[b'x'; 300]);
        assert_eq!(&frame[..4], &[0x81, 126, 0x01, 0x2C]);
        assert_eq!(frame.len(), 4 + 300);
        assert_eq!(
            &close_frame(1008, "slow")[..],
            &[0x88, 6, 0x03, 0xF0, b's', b'l', b'o', b'w']
        );
        // The accept key of RFC 6455's example.
        let answer = String::from_utf8(upgrade_response(b"dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        assert!(answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }
}
