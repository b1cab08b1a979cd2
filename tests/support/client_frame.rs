//! WebSocket frames as a client sends them, for the tests that speak the
//! protocol byte by byte. Each target includes this file with `#[path]`.

/// A client frame, encoded here by RFC 6455 §5.2 (not by the parser's
/// header code): FIN and opcode, the mask bit and the shortest length
/// form, the mask key, the masked payload.
pub fn client_frame(fin: bool, opcode: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
