//! Closing a connection the client may still be writing to. If a socket is
//! closed with bytes it has not read, the kernel answers with a reset and
//! throws away what it had not sent yet; and a client still sending (the
//! rest of a body over `--max-body-bytes`, requests pipelined behind a bad
//! one) gets "connection reset" on its `send` and never reads the 413 or
//! 400 that said why. So, as HTTP servers do, a connection whose last
//! answer is written but whose client has not finished is closed in two
//! steps: our side is shut (the client reads every answer, then end of
//! stream), and what the client still sends is read and dropped until it
//! closes too, or for at most [`LINGER`].

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
        conn.read_len = 0;
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
                Ok(_) => conn.last_progress = self.now,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.close(slot);
    }
}

/// How long a stopping service waits for the clients of its closing
/// connections to go quiet before it exits (`Front::lingering_quiet`).
pub(super) const QUIET_BEFORE_EXIT: Duration = Duration::from_millis(100);

impl Front {
    /// Every HTTP connection has given the last request it will be served
    /// (at a stop, what was read at the signal): no command of theirs is
    /// still to come, so the feed's end can be placed after them all.
    pub(super) fn requests_all_taken(&self) -> bool {
        (self.connections.iter().flatten()).all(|c| c.ws.is_some() || c.last_request_seen)
    }

    /// No closing connection's client has sent anything for
    /// [`QUIET_BEFORE_EXIT`]. The process's exit closes every socket, and
    /// one closed with unread bytes, or sent more after, is reset: the
    /// reset throws away the answers the kernel has not yet delivered. A
    /// client still sending past its connection's close (a pipelining
    /// writer that has not seen the end of the stream) is waited for, up
    /// to the drain timeout.
    pub(super) fn lingering_quiet(&self) -> bool {
        let quiet = |c: &super::Connection| match c.lingering_since {
            Some(since) => {
                let heard = since.max(c.last_progress);
                self.now.saturating_duration_since(heard) >= QUIET_BEFORE_EXIT
            }
            None => true,
        };
        self.connections.iter().flatten().all(quiet)
    }

    /// Reads and drops what every closing connection's client sent, last
    /// thing before the exit closes them (see [`Front::lingering_quiet`]).
    pub(super) fn discard_all_input(&mut self) {
        for slot in 0..self.connections.len() {
            let lingering = self.connections[slot]
                .as_ref()
                .is_some_and(|c| c.lingering_since.is_some());
            if lingering {
                self.discard_input(slot);
            }
        }
    }
}
