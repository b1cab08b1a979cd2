//! The front's clean stop (SIGTERM, SIGINT). It stops accepting, reads
//! each HTTP connection's socket once more (what the client sent before
//! the signal) and then never again: a client that pipelines without a
//! pause would otherwise keep the service serving it, and the feed's end
//! could not be placed after its commands. Every request read is
//! answered; each connection is then closed (`linger`), so its client
//! reads every answer, then the end of the stream, and its unread
//! requests were never applied. Once every HTTP connection has had its
//! last request, the feed is ended (`subscribers::FeedEnd`). The exit
//! waits for the clients of the closing connections to go quiet.

use std::time::Duration;

use super::subscribers::FeedEnd;
use super::{Connection, Front};

/// How long the clients of closing connections must have sent nothing
/// before the stopping service exits ([`Front::lingering_quiet`]).
const QUIET_BEFORE_EXIT: Duration = Duration::from_millis(100);

impl Front {
    /// Stops accepting, and serves what the sockets hold at the signal.
    pub(super) fn begin_stop(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.feed_end = FeedEnd::Due;
        // Requests already in the sockets were sent before the signal:
        // read and serve them too, whether or not their readable events
        // have been taken yet.
        for slot in 0..self.connections.len() {
            if let Some(conn) = self.connections[slot].as_mut() {
                conn.socket_drained = false;
            }
            self.pump(slot);
        }
        // From here on an HTTP connection counts as drained for good:
        // nothing more is read from it, what is left in its buffer that is
        // not a whole request is given up, and it closes once answered.
        self.stopping = true;
        for slot in 0..self.connections.len() {
            match self.connections[slot].as_mut() {
                Some(conn) if conn.ws.is_none() => conn.socket_drained = true,
                _ => continue,
            }
            self.pump(slot);
        }
        self.publish_staged();
    }

    /// Everything read is answered and written, the feed is ended and
    /// every subscriber has been sent all of it and its close frame, and
    /// the closing connections' clients are quiet: the front may return.
    pub(super) fn stop_done(&mut self) -> bool {
        self.end_feed_if_answered();
        self.in_flight.is_empty()
            && self.awaiting_replica.is_empty()
            && self.feed_end == FeedEnd::Closed
            && self.subscribers.is_empty()
            && self.all_written()
            && self.lingering_quiet()
    }

    /// The last steps before the front returns (and its sockets close).
    pub(super) fn finish_stop(&mut self) {
        // Reads still unanswered (the drain timed out) will not be written.
        self.abandon_reads(|_| true);
        for slot in 0..self.connections.len() {
            let lingering =
                (self.connections[slot].as_ref()).is_some_and(|c| c.lingering_since.is_some());
            if lingering {
                self.discard_input(slot);
            }
        }
    }

    /// Every HTTP connection has had the last request it will be served
    /// (at a stop, the last read at the signal): no command of theirs is
    /// still to come, so the feed's end can be placed after them all.
    pub(super) fn requests_all_taken(&self) -> bool {
        (self.connections.iter().flatten()).all(|c| c.ws.is_some() || c.last_request_seen)
    }

    /// No closing connection's client has sent anything for
    /// [`QUIET_BEFORE_EXIT`]. The exit closes every socket, and one closed
    /// with bytes unread, or sent more after, is reset: the reset throws
    /// away the answers the kernel has not yet delivered. A client still
    /// sending past its connection's close (a pipelining writer that has
    /// not yet seen the end of the stream) is waited for, up to the drain
    /// timeout.
    fn lingering_quiet(&self) -> bool {
        let quiet = |c: &Connection| match c.lingering_since {
            Some(since) => {
                let heard = since.max(c.last_progress);
                self.now.saturating_duration_since(heard) >= QUIET_BEFORE_EXIT
            }
            None => true,
        };
        self.connections.iter().flatten().all(quiet)
    }
}
