//! `POST /orders/cancel_all_after`: a dead man's switch, as exchange APIs
//! offer it (BitMEX `cancelAllAfter`, Kraken `CancelAllOrdersAfter`). A
//! client that quotes sets a timeout and refreshes it while it is alive;
//! if it stops (it crashed, its network went), the deadline passes and
//! every resting order is cancelled, so nothing it left behind trades on
//! prices it no longer watches. A client that names its orders with a
//! prefix of its own may set a switch for those alone
//! (`"client_order_id_prefix"`): several clients then each keep their
//! own, and one going quiet pulls only its orders.
//!
//! The front owns the deadlines: they are times, which the engine never
//! reads. When the one of every order passes, the front sends one
//! cancel-all (as `DELETE /orders`); when a prefix's passes, it asks the
//! replica for the resting orders so named and cancels them as one batch
//! (as `DELETE /orders?client_order_id_prefix=`). Either is journaled as
//! every command is. Each deadline is kept on disk
//! (`persist::cancel_after`), marked with its last record's number once
//! it fires and removed once that record is durable, so a start after a
//! crash at any point cancels again only if the record was lost.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::api::{self, ApiError, ClientOrderId};
use crate::engine::{Command, CommandKind, OrderId};
use crate::matching::{Barrier, BarrierPurpose, Request};
use crate::persist::cancel_after::{Deadline, DeadlineFile};

use super::{routes, Awaiting, Front, InFlight};

/// Most switches by prefix armed at once: each is a file, rewritten on
/// every refresh.
pub const MAX_PREFIX_SWITCHES: usize = 1024;

/// The switches' state on the front.
#[derive(Debug)]
pub struct CancelAllAfter {
    dir: PathBuf,
    sync: bool,
    /// Each switch armed, or gone off and not yet done.
    switches: Vec<Switch>,
    /// Times a switch went off since the start, for `GET /metrics`.
    fired: u64,
}

#[derive(Debug)]
struct Switch {
    file: DeadlineFile,
    armed: Option<Armed>,
    /// The deadline that went off, while its cancels have not all come
    /// back.
    went_off: Option<Deadline>,
    /// Goings-off under way (a cancel-all; or a prefix's listing, then its
    /// batch of cancels): a switch that cancels what fits the command
    /// ring and goes off again for the rest has two.
    rounds: u32,
    /// Orders the going-off under way cancelled so far, over its rounds:
    /// logged once, when the last round ends.
    cancelled: u64,
    /// The orders of the going-off under way the command ring had no room
    /// for yet: it goes off again at once for them.
    rest: Option<Rest>,
    /// A prefix's deadline that passed while the service was down: the
    /// orders it cancels, listed from the recovered book, so that they
    /// are cancelled before any request is served.
    listed_at_start: Option<Vec<OrderId>>,
    /// It went off at start: until its cancels are all staged (in turns,
    /// if the ring cannot take them at once), no connection is accepted.
    at_start: bool,
}

/// What a going-off listed and has not staged: the same going-off, due
/// again at once (since `since`) and not counted twice, whatever the client
/// does to the switch meanwhile (a refresh or a disarm does not save them).
/// These orders, not what rests under the prefix by then: one placed after
/// the deadline is not the going-off's.
#[derive(Debug)]
struct Rest {
    since: Instant,
    orders: Vec<OrderId>,
}

impl Switch {
    /// Whether a going-off is under way: a round out, or a rest to stage.
    fn going_off(&self) -> bool {
        self.rounds > 0 || self.rest.is_some()
    }

    /// What goes off at `now`, if anything: the rest of a going-off (its
    /// deadline, and true), before the client's own deadline if passed
    /// (false).
    fn due_at(&self, now: Instant) -> Option<(Deadline, bool)> {
        match (&self.rest, self.went_off, self.armed) {
            (Some(_), Some(went_off), _) => Some((went_off, true)),
            (_, _, Some(armed)) if armed.at <= now => Some((armed.deadline, false)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Armed {
    deadline: Deadline,
    /// The deadline on the loop's clock, which wall-clock steps do not move.
    at: Instant,
}

impl CancelAllAfter {
    /// The switches kept in the data directory `dir` (`loaded`, with
    /// their files), armed with what they held at start, the journal
    /// having been recovered up to `recovered_seq`. A deadline already
    /// past goes off on the loop's first turn, before any client is
    /// served (a prefix's cancels the orders `named` lists from the
    /// recovered book); one that went off before the stop is done with,
    /// unless its record was lost, in which case it goes off again.
    pub fn new(
        dir: &Path,
        sync: bool,
        loaded: Vec<(DeadlineFile, Deadline)>,
        recovered_seq: u64,
        named: impl Fn(ClientOrderId) -> Vec<OrderId>,
    ) -> Result<Self, String> {
        let now = Instant::now();
        let now_micros = api::now_micros();
        let mut switches = Vec::new();
        for (file, deadline) in loaded {
            if deadline.fired_by(recovered_seq) {
                file.clear()
                    .map_err(|e| format!("cannot remove {}: {e}", file.path().display()))?;
                continue;
            }
            let left = deadline.trigger_micros.saturating_sub(now_micros);
            let listed_at_start = match file.prefix() {
                Some(prefix) if left == 0 => Some(named(prefix)),
                _ => None,
            };
            let armed = Armed {
                deadline: Deadline {
                    fired_seq: None,
                    ..deadline
                },
                at: now + Duration::from_micros(left),
            };
            switches.push(Switch {
                file,
                armed: Some(armed),
                went_off: None,
                rounds: 0,
                cancelled: 0,
                rest: None,
                at_start: listed_at_start.is_some(),
                listed_at_start,
            });
        }
        Ok(CancelAllAfter {
            dir: dir.to_path_buf(),
            sync,
            switches,
            fired: 0,
        })
    }

    /// When the next one goes off (or goes off again for its rest), if
    /// any is armed.
    pub(super) fn due(&self) -> Option<Instant> {
        self.switches
            .iter()
            .filter_map(|s| {
                (s.rest.as_ref().filter(|_| s.went_off.is_some()))
                    .map(|rest| rest.since)
                    .or(s.armed.map(|a| a.at))
            })
            .min()
    }

    /// Whether a switch that passed while the service was down still has
    /// cancels to stage: requests wait for them (they are staged first).
    pub(super) fn holding_the_start(&self) -> bool {
        self.switches
            .iter()
            .any(|s| s.at_start && (s.listed_at_start.is_some() || s.rest.is_some()))
    }

    /// How many are armed.
    pub(super) fn armed(&self) -> usize {
        self.switches.iter().filter(|s| s.armed.is_some()).count()
    }

    /// Times one went off since the start.
    pub(super) fn fired(&self) -> u64 {
        self.fired
    }

    fn find(&self, prefix: Option<ClientOrderId>) -> Option<usize> {
        self.switches.iter().position(|s| s.file.prefix() == prefix)
    }

    /// Arms `prefix`'s switch (or the one of every order) `timeout_ms`
    /// after `now_micros`; 0 disarms it. The file is changed first, so an
    /// answer never claims what a restart would not keep.
    fn set(
        &mut self,
        prefix: Option<ClientOrderId>,
        timeout_ms: u64,
        now_micros: u64,
    ) -> Result<(), ApiError> {
        let found = self.find(prefix);
        let saved = |result: io::Result<()>, file: &DeadlineFile| {
            result.map_err(|error| {
                let path = file.path().display();
                ApiError::new(
                    500,
                    format!("cannot save the deadline in {path}: {error}; it was not changed"),
                )
            })
        };
        if timeout_ms == 0 {
            if let Some(at) = found {
                let switch = &mut self.switches[at];
                // A going-off under way keeps its file until it is done
                // (`round_ended` removes it then): a crash before must
                // finish it at start, and the disarm does not save its
                // orders.
                if !switch.going_off() {
                    saved(switch.file.clear(), &switch.file)?;
                }
                switch.armed = None;
                self.forget_if_done(at);
            }
            return Ok(());
        }
        let at = match found {
            Some(at) => at,
            None => {
                // Armed ones: one going off and not armed again is no
                // longer the client's to count.
                let by_prefix = (self.switches.iter())
                    .filter(|s| s.file.prefix().is_some() && s.armed.is_some());
                if prefix.is_some() && by_prefix.count() >= MAX_PREFIX_SWITCHES {
                    return Err(ApiError::new(
                        422,
                        format!(
                            "client_order_id_prefix: at most {MAX_PREFIX_SWITCHES} switches by prefix at once"
                        ),
                    ));
                }
                let file = match prefix {
                    Some(prefix) => DeadlineFile::for_prefix(&self.dir, self.sync, prefix),
                    None => DeadlineFile::new(&self.dir, self.sync),
                };
                self.switches.push(Switch {
                    file,
                    armed: None,
                    went_off: None,
                    rounds: 0,
                    cancelled: 0,
                    rest: None,
                    listed_at_start: None,
                    at_start: false,
                });
                self.switches.len() - 1
            }
        };
        let deadline = Deadline::after(now_micros, timeout_ms);
        let file = &self.switches[at].file;
        if let Err(error) = saved(file.store(deadline), file) {
            self.forget_if_done(at);
            return Err(error);
        }
        self.switches[at].armed = Some(Armed {
            deadline,
            at: Instant::now() + Duration::from_millis(timeout_ms),
        });
        Ok(())
    }

    /// Drops the switch at `at` if it is neither armed nor going off.
    fn forget_if_done(&mut self, at: usize) {
        let switch = &self.switches[at];
        if switch.armed.is_none() && !switch.going_off() {
            self.switches.swap_remove(at);
        }
    }

    /// The answer to a `GET` (and, with `message`, to a `POST`) about
    /// `prefix`'s switch at `now_micros`.
    fn state(
        &self,
        prefix: Option<ClientOrderId>,
        message: Option<&str>,
        now_micros: u64,
    ) -> String {
        let mut body = String::from("{");
        if let Some(message) = message {
            body.push_str(&format!("\"success\":true,\"message\":\"{message}\","));
        }
        if let Some(prefix) = prefix {
            body.push_str(&format!(
                "\"client_order_id_prefix\":\"{}\",",
                prefix.as_str()
            ));
        }
        body.push_str("\"current_time\":\"");
        api::write_timestamp(&mut body, now_micros * 1_000);
        match self.find(prefix).and_then(|at| self.switches[at].armed) {
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

    /// Marks `prefix`'s switch, gone off, fired by journal record `seq`
    /// in its file, unless a client armed it again since.
    fn mark_fired(&self, prefix: Option<ClientOrderId>, seq: u64) {
        let Some(switch) = self.find(prefix).map(|at| &self.switches[at]) else {
            return;
        };
        let (None, Some(deadline)) = (switch.armed, switch.went_off) else {
            return;
        };
        let fired = Deadline {
            fired_seq: Some(seq),
            ..deadline
        };
        if let Err(error) = switch.file.store(fired) {
            // A restart would then cancel again.
            let path = switch.file.path().display();
            crate::log_line!("orderbook: cancel-all-after: cannot mark {path} fired: {error}");
        }
    }
}

impl Front {
    /// `POST /orders/cancel_all_after`: arms, refreshes or disarms a
    /// switch and answers its state.
    pub(super) fn set_cancel_after(
        &mut self,
        slot: usize,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let (timeout_ms, prefix) = api::cancel_after_timeout(body)?;
        // The answer's current time is the one the deadline counts from.
        let now_micros = api::now_micros();
        self.cancel_after.set(prefix, timeout_ms, now_micros)?;
        let message = match timeout_ms {
            0 => "Cancel-all disarmed",
            _ => "Cancel-all armed",
        };
        let answer = self.cancel_after.state(prefix, Some(message), now_micros);
        self.answer_now(slot, 200, answer.as_bytes(), keep_alive);
        Ok(())
    }

    /// `GET /orders/cancel_all_after` (`?client_order_id_prefix=`): a
    /// switch's state.
    pub(super) fn cancel_after_state(
        &mut self,
        slot: usize,
        query: Option<&str>,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let prefix = api::client_id_prefix_param(query)?;
        let answer = self.cancel_after.state(prefix, None, api::now_micros());
        self.answer_now(slot, 200, answer.as_bytes(), keep_alive);
        Ok(())
    }

    /// Sets off each switch whose deadline has passed: the cancel-all, or
    /// a prefix's listing barrier (or, at start, its cancels of the
    /// orders listed then). A full command ring makes it wait for the
    /// next turn of the loop, never drops it.
    pub(super) fn cancel_all_if_due(&mut self) {
        let now = Instant::now();
        if self.cancel_after.due().is_none_or(|due| due > now) {
            return;
        }
        let due: Vec<Option<ClientOrderId>> = (self.cancel_after.switches.iter())
            .filter(|switch| switch.due_at(now).is_some())
            .map(|switch| switch.file.prefix())
            .collect();
        for prefix in due {
            let Some(at) = self.cancel_after.find(prefix) else {
                continue;
            };
            let switch = &mut self.cancel_after.switches[at];
            let Some((deadline, rest)) = switch.due_at(now) else {
                continue;
            };
            let listed = match rest {
                true => switch.rest.take().map(|rest| rest.orders),
                false => switch.listed_at_start.take(),
            };
            let staged = match (prefix, &listed) {
                (None, _) => {
                    let command = Command {
                        ts: self.stamps.stamp(),
                        kind: CommandKind::CancelAll { side: None },
                    };
                    self.stage_own(Request::Apply(command), Awaiting::CancelAfter)
                }
                (Some(_), Some(_)) => true,
                (Some(prefix), None) => {
                    let barrier = Barrier {
                        ticket: self.next_ticket,
                        purpose: BarrierPurpose::Named { side: None, prefix },
                    };
                    let awaiting = Awaiting::SwitchNamed { prefix };
                    self.stage_own(Request::Barrier(barrier), awaiting)
                }
            };
            let switch = &mut self.cancel_after.switches[at];
            if !staged {
                switch.listed_at_start = listed;
                break;
            }
            if !rest {
                switch.armed = None;
                self.cancel_after.fired += 1;
            }
            switch.went_off = Some(deadline);
            switch.rounds += 1;
            match (prefix, listed) {
                (None, _) => self.cancel_after.mark_fired(None, self.journal.last_seq()),
                (Some(prefix), Some(orders)) => self.switch_listed(prefix, &orders),
                (Some(_), None) => {}
            }
        }
        self.publish_staged();
    }

    /// A prefix's switch went off and the replica listed its resting
    /// orders (or a turn of its rest came): cancels them as one batch,
    /// journaled as one, so a crash keeps all of it or none, and once the
    /// last of them is staged marks the file with the batch's last record.
    /// A list the command ring can hold waits whole for room; only one
    /// longer than the ring goes in turns. What waits is its `rest`, for
    /// the next turn of the loop.
    pub(super) fn switch_listed(&mut self, prefix: ClientOrderId, orders: &[OrderId]) {
        let Some(at) = self.cancel_after.find(Some(prefix)) else {
            return;
        };
        if orders.is_empty() {
            self.cancel_after.switches[at].at_start = false;
            return self.switch_done(Some(prefix), 0);
        }
        let free = self.requests.free_len();
        let room = match orders.len() <= self.requests.capacity() {
            true if free < orders.len() => 0,
            true => orders.len(),
            false => free,
        };
        let (now, later) = orders.split_at(room);
        // A going-off at start holds the connections back only until all
        // of it is staged.
        self.cancel_after.switches[at].at_start &= !later.is_empty();
        if !later.is_empty() {
            self.cancel_after.switches[at].rest = Some(Rest {
                since: Instant::now(),
                orders: later.to_vec(),
            });
            if now.is_empty() {
                // This round ends here; the next takes up the rest.
                return self.round_ended(Some(prefix));
            }
        }
        let cancels = routes::cancels_of(now);
        let waiting = InFlight::own(self.next_ticket, Awaiting::SwitchNamed { prefix });
        self.next_ticket += 1;
        self.stage_batch(&waiting, &cancels, &[], |_, last, _| {
            Awaiting::SwitchCancel { last, prefix }
        });
        if later.is_empty() {
            // Marked only once all of it is staged: a crash before goes
            // off again at start for the orders still resting.
            self.cancel_after
                .mark_fired(Some(prefix), self.journal.last_seq());
        }
        self.publish_staged();
    }

    /// A switch's cancels came back (under `--fsync`, their records are on
    /// disk), `count` orders cancelled: says so.
    pub(super) fn switch_done(&mut self, prefix: Option<ClientOrderId>, count: u64) {
        if let Some(at) = self.cancel_after.find(prefix) {
            self.cancel_after.switches[at].cancelled += count;
        }
        self.round_ended(prefix);
    }

    /// One going-off of `prefix`'s switch is over: once none is under way,
    /// and no rest of it waits for room in the command ring, it is said,
    /// and the file goes unless the switch was armed again meanwhile.
    fn round_ended(&mut self, prefix: Option<ClientOrderId>) {
        let switches = &mut self.cancel_after;
        let Some(at) = switches.find(prefix) else {
            return;
        };
        let switch = &mut switches.switches[at];
        switch.rounds = switch.rounds.saturating_sub(1);
        if switch.going_off() {
            return;
        }
        let whose = match prefix {
            Some(prefix) => format!(" ({})", prefix.as_str()),
            None => String::new(),
        };
        let count = std::mem::take(&mut switch.cancelled);
        crate::log_line!(
            "orderbook: cancel-all-after{whose}: the deadline passed with no refresh; \
             {count} resting orders cancelled"
        );
        switch.went_off = None;
        if switch.armed.is_none() {
            if let Err(error) = switch.file.clear() {
                let path = switch.file.path().display();
                crate::log_line!("orderbook: cancel-all-after: cannot remove {path}: {error}");
            }
        }
        switches.forget_if_done(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A switch gone off with orders left for a second turn of the command
    /// ring: `switch_listed` has set its `rest`.
    fn gone_off_with_a_rest(switches: &mut CancelAllAfter, prefix: ClientOrderId) {
        let at = switches.find(Some(prefix)).expect("armed");
        let switch = &mut switches.switches[at];
        let armed = switch.armed.take().expect("armed");
        switch.went_off = Some(armed.deadline);
        switch.rounds = 1;
        switch.cancelled = 4;
        switch.rest = Some(Rest {
            since: Instant::now(),
            orders: Vec::new(),
        });
    }

    /// The rest of a going-off is cancelled whatever the client does to
    /// the switch meanwhile: a disarm or a refresh used to take its place,
    /// and the orders the ring had no room for stayed.
    #[test]
    fn the_rest_of_a_going_off_survives_a_disarm_and_a_refresh() {
        let dir = std::env::temp_dir().join(format!("switch-rest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = ClientOrderId::parse("big-").unwrap();
        let mut switches = CancelAllAfter::new(&dir, false, Vec::new(), 0, |_| Vec::new()).unwrap();
        let now_micros = api::now_micros();
        switches.set(Some(prefix), 200, now_micros).unwrap();
        let armed_deadline = switches.switches[0].armed.unwrap().deadline;
        gone_off_with_a_rest(&mut switches, prefix);

        // Disarmed: the switch is kept for its rest, which is due now.
        switches.set(Some(prefix), 0, now_micros).unwrap();
        assert_eq!(switches.armed(), 0);
        let at = switches.find(Some(prefix)).expect("kept for its rest");
        let now = Instant::now();
        assert!(switches.due().is_some_and(|due| due <= now));
        let (deadline, rest) = switches.switches[at].due_at(now).expect("the rest is due");
        assert_eq!(
            (deadline.trigger_micros, rest),
            (armed_deadline.trigger_micros, true)
        );

        // Refreshed: the rest still goes first, then the new deadline.
        switches.set(Some(prefix), 60_000, now_micros).unwrap();
        assert_eq!(switches.armed(), 1);
        let switch = &mut switches.switches[at];
        assert_eq!(switch.due_at(now).map(|(_, rest)| rest), Some(true));
        switch.rest = None;
        assert_eq!(
            switch.due_at(now),
            None,
            "the refresh's deadline is a minute off"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The limit counts armed switches: one going off and not armed again
    /// no longer holds a place.
    #[test]
    fn a_switch_going_off_does_not_count_against_the_limit() {
        let dir = std::env::temp_dir().join(format!("switch-limit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut switches = CancelAllAfter::new(&dir, false, Vec::new(), 0, |_| Vec::new()).unwrap();
        let now_micros = api::now_micros();
        let name = |i: usize| ClientOrderId::parse(&format!("p{i}-")).unwrap();
        for i in 0..MAX_PREFIX_SWITCHES {
            switches.set(Some(name(i)), 60_000, now_micros).unwrap();
        }
        let full = switches.set(Some(name(MAX_PREFIX_SWITCHES)), 60_000, now_micros);
        assert_eq!(full.unwrap_err().status, 422);
        gone_off_with_a_rest(&mut switches, name(0));
        assert_eq!(switches.armed(), MAX_PREFIX_SWITCHES - 1);
        switches
            .set(Some(name(MAX_PREFIX_SWITCHES)), 60_000, now_micros)
            .unwrap();
        assert_eq!(switches.armed(), MAX_PREFIX_SWITCHES);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
