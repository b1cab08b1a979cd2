//! `POST /orders/cancel_all_after`: a dead man's switch, as exchange APIs
//! offer it (BitMEX `cancelAllAfter`, Kraken `CancelAllOrdersAfter`). A
//! client that quotes sets a timeout and refreshes it while it is alive;
//! if it stops (it crashed, its network went), the deadline passes and
//! every resting order is cancelled, so nothing it left behind trades on
//! prices it no longer watches.
//!
//! The front owns the deadline: it is a time, which the engine never
//! reads. When it passes, the front sends one cancel-all (as
//! `DELETE /orders`), journaled as every command is. The deadline is kept
//! on disk (`persist::cancel_after`), marked with that record's number
//! once it fires and removed once the record is durable, so a start after
//! a crash at any point sends the cancel-all again only if its record was
//! lost.

use std::io;
use std::time::{Duration, Instant};

use crate::api::{self, ApiError};
use crate::engine::{Command, CommandKind, Event};
use crate::matching::{Output, Request};
use crate::persist::cancel_after::{Deadline, DeadlineFile};

use super::{Awaiting, Front};

/// The switch's state on the front.
#[derive(Debug)]
pub struct CancelAllAfter {
    file: DeadlineFile,
    armed: Option<Armed>,
    /// Times it went off since the start, for `GET /metrics`.
    fired: u64,
}

#[derive(Clone, Copy, Debug)]
struct Armed {
    deadline: Deadline,
    /// The deadline on the loop's clock, which wall-clock steps do not move.
    at: Instant,
}

impl CancelAllAfter {
    /// The switch kept in `file`, armed with what it held at start, the
    /// journal having been recovered up to `recovered_seq`. A deadline
    /// already past goes off on the loop's first turn, before any client
    /// is served; one that went off before the stop is done with, unless
    /// its cancel-all's record was lost, in which case it goes off again.
    pub fn new(
        file: DeadlineFile,
        loaded: Option<Deadline>,
        recovered_seq: u64,
    ) -> Result<Self, String> {
        let now = Instant::now();
        let now_micros = api::now_micros();
        let armed = match loaded {
            Some(deadline) if deadline.fired_by(recovered_seq) => {
                file.clear()
                    .map_err(|e| format!("cannot remove {}: {e}", file.path().display()))?;
                None
            }
            Some(deadline) => {
                let left = deadline.trigger_micros.saturating_sub(now_micros);
                Some(Armed {
                    deadline: Deadline {
                        fired_seq: None,
                        ..deadline
                    },
                    at: now + Duration::from_micros(left),
                })
            }
            None => None,
        };
        Ok(CancelAllAfter {
            file,
            armed,
            fired: 0,
        })
    }

    /// When it goes off, if armed.
    pub(super) fn due(&self) -> Option<Instant> {
        self.armed.map(|armed| armed.at)
    }

    /// True while armed.
    pub(super) fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    /// Times it went off since the start.
    pub(super) fn fired(&self) -> u64 {
        self.fired
    }

    /// Arms it `timeout_ms` after `now_micros` (0 disarms it); the file
    /// is changed first, so an answer never claims what a restart would
    /// not keep.
    fn set(&mut self, timeout_ms: u64, now_micros: u64) -> io::Result<()> {
        if timeout_ms == 0 {
            self.file.clear()?;
            self.armed = None;
            return Ok(());
        }
        let now = Instant::now();
        let deadline = Deadline::after(now_micros, timeout_ms);
        self.file.store(deadline)?;
        self.armed = Some(Armed {
            deadline,
            at: now + Duration::from_millis(timeout_ms),
        });
        Ok(())
    }

    /// The answer to a `GET` (and, with `message`, to a `POST`) at
    /// `now_micros`.
    fn state(&self, message: Option<&str>, now_micros: u64) -> String {
        let mut body = String::from("{");
        if let Some(message) = message {
            body.push_str(&format!("\"success\":true,\"message\":\"{message}\","));
        }
        body.push_str("\"current_time\":\"");
        api::write_timestamp(&mut body, now_micros * 1_000);
        match self.armed {
            Some(armed) => {
                body.push_str("\",\"trigger_time\":\"");
                api::write_timestamp(&mut body, armed.deadline.trigger_micros * 1_000);
                body.push_str(&format!(
                    "\",\"timeout_ms\":{}}}",
                    armed.deadline.timeout_ms
                ));
            }
            None => body.push_str("\",\"trigger_time\":null,\"timeout_ms\":0}"),
        }
        body
    }
}

impl Front {
    /// `POST /orders/cancel_all_after`: arms, refreshes or disarms the
    /// switch and answers its state.
    pub(super) fn set_cancel_after(
        &mut self,
        slot: usize,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let timeout_ms = api::cancel_after_timeout(body)?;
        // The answer's current time is the one the deadline counts from.
        let now_micros = api::now_micros();
        if let Err(error) = self.cancel_after.set(timeout_ms, now_micros) {
            let path = self.cancel_after.file.path().display();
            return Err(ApiError::new(
                500,
                format!("cannot save the deadline in {path}: {error}; it was not changed"),
            ));
        }
        let message = match timeout_ms {
            0 => "Cancel-all disarmed",
            _ => "Cancel-all armed",
        };
        let answer = self.cancel_after.state(Some(message), now_micros);
        self.answer_now(slot, 200, answer.as_bytes(), keep_alive);
        Ok(())
    }

    /// `GET /orders/cancel_all_after`: the switch's state.
    pub(super) fn cancel_after_state(&mut self, slot: usize, keep_alive: bool) {
        let answer = self.cancel_after.state(None, api::now_micros());
        self.answer_now(slot, 200, answer.as_bytes(), keep_alive);
    }

    /// Sends the cancel-all once the deadline has passed. A full command
    /// ring makes it wait for the next turn of the loop, never drops it.
    pub(super) fn cancel_all_if_due(&mut self) {
        let Some(armed) = self.cancel_after.armed else {
            return;
        };
        if Instant::now() < armed.at {
            return;
        }
        let command = Command {
            ts: self.stamps.stamp(),
            kind: CommandKind::CancelAll { side: None },
        };
        if !self.stage_own(Request::Apply(command), Awaiting::CancelAfter) {
            return;
        }
        let fired = Deadline {
            fired_seq: Some(self.journal.last_seq()),
            ..armed.deadline
        };
        self.cancel_after.armed = None;
        self.cancel_after.fired += 1;
        let switch = &self.cancel_after;
        if let Err(error) = switch.file.store(fired) {
            // A restart would then send the cancel-all again.
            let path = switch.file.path().display();
            eprintln!("orderbook: cancel-all-after: cannot mark {path} fired: {error}");
        }
        self.publish_staged();
    }

    /// The switch's cancel-all came back (under `--fsync`, its record is
    /// on disk): says what it took, and removes the file unless the
    /// switch was armed again meanwhile.
    pub(super) fn cancel_all_done(&mut self, output: Output) {
        match output {
            Output::Event(Event::CancelledAll { count }) => eprintln!(
                "orderbook: cancel-all-after: the deadline passed with no refresh; \
                 {count} resting orders cancelled"
            ),
            other => eprintln!("orderbook: cancel-all-after: unexpected outcome {other:?}"),
        }
        let switch = &self.cancel_after;
        if switch.armed.is_none() {
            if let Err(error) = switch.file.clear() {
                let path = switch.file.path().display();
                eprintln!("orderbook: cancel-all-after: cannot remove {path}: {error}");
            }
        }
    }
}
