//! The front's clean stop (SIGTERM, SIGINT). It stops accepting, reads
//! each HTTP connection's socket once more (what the client sent before
//! the signal) and then never again: a client that pipelines without a
//! pause would otherwise keep the service serving it, and the feed's end
//! could not be placed after its commands. Every request read is
//! answered; each connection is then closed (`linger`), so its client
//! reads every answer, then the end of the stream, and its unread
//! requests were never applied. Once every HTTP connection has had its
//! last request, the feed is ended (`subscribers::FeedEnd`). The exit
//! waits until the closing connections' clients have acknowledged every
//! byte sent them (`send_queue`).

use std::time::{Duration, Instant};

use super::super::send_queue;
use super::subscribers::FeedEnd;
use super::Front;

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

    /// Everything read is answered, written and delivered, the feed is
    /// ended and every subscriber has been sent all of it and its close
    /// frame: the front may return.
    pub(super) fn stop_done(&mut self) -> bool {
        self.end_feed_if_answered();
        self.in_flight.is_empty()
            && self.awaiting_replica.is_empty()
            && self.feed_end == FeedEnd::Closed
            && self.subscribers.is_empty()
            && self.all_written()
            && self.answers_delivered()
    }

    /// The last step before the front returns (and its sockets close):
    /// reads still unanswered (the drain timed out) will not be written.
    pub(super) fn finish_stop(&mut self) {
        self.abandon_reads(|_| true);
    }

    /// Every HTTP connection has had the last request it will be served
    /// (at a stop, the last read at the signal): no command of theirs is
    /// still to come, so the feed's end can be placed after them all.
    pub(super) fn requests_all_taken(&self) -> bool {
        (self.connections.iter().flatten()).all(|c| c.ws.is_some() || c.last_request_seen)
    }

    /// Every closing connection's client has acknowledged all we sent it,
    /// so the exit's close loses nothing, even if it resets the connection
    /// (a client still reading slowly sends its next pipelined request
    /// into the closed socket). Where `/proc` cannot say, the exit does
    /// not wait.
    /// The tables are read at growing intervals ([`DeliveryCheck`]): each
    /// read walks every TCP socket of the machine's network namespace.
    fn answers_delivered(&mut self) -> bool {
        if self.now < self.delivery_check.next {
            return false;
        }
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for conn in self.connections.iter().flatten() {
            if conn.lingering_since.is_none() {
                continue;
            }
            if let Ok(inode) = send_queue::inode(&conn.stream) {
                // A v4 client of a v6 listener is in the v6 table.
                match conn.peer.is_ipv6() {
                    true => v6.push(inode),
                    false => v4.push(inode),
                }
            }
        }
        let delivered = !matches!(send_queue::unacknowledged(&v4, &v6), Ok(bytes) if bytes > 0);
        if !delivered {
            self.delivery_check.wait_more(self.now);
        }
        delivered
    }
}

/// When the closing connections' send queues are next read: 10 ms after
/// the first read that found bytes unacknowledged, then twice as long
/// each time, up to 160 ms (at most about 35 reads in a 5 s drain).
pub(super) struct DeliveryCheck {
    next: Instant,
    wait: Duration,
}

impl DeliveryCheck {
    const FIRST: Duration = Duration::from_millis(10);
    const LONGEST: Duration = Duration::from_millis(160);

    pub(super) fn new(now: Instant) -> Self {
        DeliveryCheck {
            next: now,
            wait: Self::FIRST,
        }
    }

    fn wait_more(&mut self, now: Instant) {
        self.next = now + self.wait;
        self.wait = (self.wait * 2).min(Self::LONGEST);
    }
}
