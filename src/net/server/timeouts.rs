//! HTTP connections that stop moving. Without these an idle client, or one
//! that sends half a request and waits (slowloris), holds a connection
//! slot for ever, and `--max-connections` of them lock everyone else out.
//!
//! Once every [`CHECK_EVERY`](super::CHECK_EVERY) the loop looks at each
//! HTTP connection's [`Stall`] and how long no byte has moved on it:
//! - idle (no request in progress, nothing to answer): closed after
//!   `--idle-timeout`, as keep-alive servers do; a client simply reconnects;
//! - half a request received: answered 408 and closed once
//!   `--request-timeout` has passed since its first byte (the whole
//!   request, not each byte, must arrive in time, so a client dripping a
//!   byte a second cannot hold the slot either);
//! - answers left unwritten because the client stopped reading: closed after
//!   `--request-timeout`.
//!
//! Before any of these, the socket is read and written once more: what
//! came while the loop was stopped is not mistaken for stillness.
//!
//! A connection whose answer the engine or the replica still owes is never
//! timed out: that wait is ours, not the client's. WebSocket subscribers are
//! left to their own ping and pong. The same pass ends lingering closes
//! (`linger`) that have run their course.

use std::fmt::Write as _;
use std::time::Duration;

use super::linger::LINGER;
use super::{Connection, Front};
use crate::api::ApiError;

/// Connections closed by a timeout, by cause, for `GET /metrics`.
#[derive(Default)]
pub(super) struct TimedOut {
    idle: u64,
    request: u64,
    not_reading: u64,
}

/// Where an HTTP connection stands, as far as timeouts go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stall {
    /// No request in progress and nothing to answer or write.
    Idle,
    /// Part of a request is buffered; the rest has not come.
    PartialRequest,
    /// Answers are waiting for the client to read them.
    NotReading,
    /// An answer is owed by the engine or the replica, or the connection is
    /// already closing: nothing to time out.
    Busy,
}

impl Stall {
    fn of(conn: &Connection) -> Stall {
        if conn.unwritten() > 0 {
            Stall::NotReading
        } else if !conn.answers.is_empty() || conn.last_request_seen || conn.peer_done {
            Stall::Busy
        } else if conn.read_len > 0 {
            // A whole request would have been served already (no answers
            // are outstanding, so no pipeline bound holds it back).
            Stall::PartialRequest
        } else {
            Stall::Idle
        }
    }
}

impl Front {
    /// Times out the HTTP connections that have been still for too long,
    /// and ends the lingering closes that have lasted [`LINGER`].
    pub(super) fn check_connections(&mut self) {
        let request = self.config.request_timeout;
        for slot in 0..self.connections.len() {
            let Some(conn) = self.connections[slot].as_ref() else {
                continue;
            };
            if conn.ws.is_some() {
                continue;
            }
            if let Some(closing) = conn.lingering_since {
                if self.now.saturating_duration_since(closing) >= LINGER {
                    self.close(slot);
                }
                continue;
            }
            if self.timed_out(conn).is_none() {
                continue;
            }
            // Before a timeout, what the socket holds is read and what it
            // takes is written: a loop that was stopped (SIGSTOP, a frozen
            // VM) has not polled since, and the requests sent meanwhile were
            // reset unread as idle (19 of 20 when it was stopped busy).
            if let Some(conn) = self.connections[slot].as_mut() {
                conn.socket_drained = false;
            }
            self.pump(slot);
            let Some(stall) = self.connections[slot]
                .as_ref()
                .and_then(|c| self.timed_out(c))
            else {
                continue;
            };
            match stall {
                Stall::Idle => {
                    self.stats.timed_out.idle += 1;
                    self.close(slot);
                }
                Stall::NotReading => {
                    self.stats.timed_out.not_reading += 1;
                    self.close(slot);
                }
                Stall::PartialRequest => {
                    self.stats.timed_out.request += 1;
                    let seconds = request.map_or(0, |l| l.as_secs());
                    let body = ApiError::new(
                        408,
                        format!("Request not completed within {seconds} s; closing the connection"),
                    )
                    .body();
                    self.answer_now(slot, 408, &body, false);
                    if let Some(conn) = self.connections[slot].as_mut() {
                        conn.read_len = 0;
                        conn.last_request_seen = true;
                    }
                    self.pump(slot);
                }
                Stall::Busy => {}
            }
        }
    }

    /// The connection's stall if it has lasted past its timeout.
    fn timed_out(&self, conn: &Connection) -> Option<Stall> {
        let since = |then| self.now.saturating_duration_since(then);
        let still = since(conn.last_progress);
        let over = |limit: Option<Duration>| limit.is_some_and(|l| still >= l);
        let (idle, request) = (self.config.idle_timeout, self.config.request_timeout);
        let stall = Stall::of(conn);
        let due = match stall {
            Stall::Idle => over(idle),
            Stall::NotReading => over(request),
            Stall::PartialRequest => request.is_some_and(|l| since(conn.request_started) >= l),
            Stall::Busy => false,
        };
        due.then_some(stall)
    }

    /// `orderbook_connections_timed_out_total`, by cause.
    pub(super) fn write_timeout_metrics(&self, out: &mut String) {
        let counts = &self.stats.timed_out;
        let _ = writeln!(
            out,
            "# HELP orderbook_connections_timed_out_total HTTP connections closed because nothing moved on them: idle (--idle-timeout), a request left half sent (answered 408) or answers left unread (--request-timeout)."
        );
        let _ = writeln!(out, "# TYPE orderbook_connections_timed_out_total counter");
        for (reason, count) in [
            ("idle", counts.idle),
            ("request", counts.request),
            ("not_reading", counts.not_reading),
        ] {
            let _ = writeln!(
                out,
                "orderbook_connections_timed_out_total{{reason=\"{reason}\"}} {count}"
            );
        }
    }
}
