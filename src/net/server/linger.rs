//! Closing a connection the client may still be writing to. If a socket is
//! closed with bytes it has not read, the kernel answers with a reset and
//! throws away what it had not sent yet; and a client still sending (the
//! rest of a body over `--max-body-bytes`, requests pipelined behind a bad
//! one) gets "connection reset" on its `send` and never reads the 413 or
//! 400 that said why. So, as HTTP servers do, a connection whose last
//! answer is written but whose client has not finished is closed in two
//! steps: our side is shut (the client reads every answer, then end of
//! stream), and what the client still sends is read and dropped until it
//! closes too, or for at most [`LINGER`]. A WebSocket subscriber whose
//! close frame is written is closed so too: its client may still be
//! sending pings or its own close frame.

use std::io::{self, Read};
use std::net::Shutdown;
use std::time::Duration;

use super::Front;

/// The longest a closing connection keeps reading what its client sends
/// (`check_connections` ends it).
pub(super) const LINGER: Duration = Duration::from_secs(5);

impl Front {
    /// Starts closing a connection whose answers are all written but whose
    /// client has not closed its side.
    pub(super) fn linger(&mut self, slot: usize) {
        let now = self.now;
        let Some(conn) = self.connections[slot].as_mut() else {
            return;
        };
        if conn.stream.shutdown(Shutdown::Write).is_err() {
            self.close(slot);
            return;
        }
        conn.lingering_since = Some(now);
        conn.last_request_seen = true;
        conn.read_len = 0;
        // A subscriber told goodbye is sent nothing more.
        if let Some(sub) = conn.ws.take() {
            self.forget_subscriber(slot, &sub);
        }
        self.discard_input(slot);
    }

    /// Reads and drops what a lingering connection's client sent; closes
    /// it at the client's end of stream (or an error).
    pub(super) fn discard_input(&mut self, slot: usize) {
        let Some(conn) = self.connections[slot].as_mut() else {
            return;
        };
        loop {
            match conn.stream.read(&mut conn.read_buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.close(slot);
    }
}
