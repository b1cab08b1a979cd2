//! Answers from the matching thread's outputs: the closing item of each
//! request, read off the output ring in the order requests were sent,
//! finds its ticket at the head of `in_flight`; a command's outcome is
//! written as the contract says, and reads the replica builds are matched
//! with its answer whichever arrives first.

use crate::api::{self, ApiError, ClientOrderId};
use crate::engine::{Event, RejectReason};
use crate::matching::Output;
use crate::replica::ReplicaAnswer;

use super::{take_ticket, Awaiting, CommandName, Front, InFlight};

impl Front {
    /// Reads the matching thread's outputs in order, each closing item
    /// answered for its ticket.
    pub(super) fn take_outputs(&mut self) {
        let mut drained = std::mem::take(&mut self.drained);
        let activity = &mut self.stats.activity;
        self.outputs.drain(usize::MAX, |output| {
            if let Output::Event(event) = output {
                activity.count(event);
            }
            match output {
                output if output.is_closing() => drained.push_back(*output),
                _ => {}
            }
        });
        // Under --fsync an answer waits until its record is on disk, and
        // everything after it waits behind it, so order is kept.
        let durable = self.journal.durable();
        while let Some(&output) = drained.front() {
            if output.is_closing() && self.in_flight.front().is_some_and(|w| w.seq > durable) {
                break;
            }
            drained.pop_front();
            let Some(waiting) = self.in_flight.pop_front() else {
                crate::log_line!("orderbook: an answer arrived with no request waiting");
                continue;
            };
            match (waiting.kind, output) {
                (Awaiting::Snapshot | Awaiting::OrderSnapshot | Awaiting::FeedEnd, _) => continue,
                (Awaiting::CancelAfter, output) => {
                    match output {
                        Output::Event(Event::CancelledAll { count }) => {
                            self.switch_done(None, count)
                        }
                        other => {
                            crate::log_line!("orderbook: cancel-all-after: unexpected {other:?}")
                        }
                    }
                    continue;
                }
                (Awaiting::SwitchCancel { last, prefix }, output) => {
                    if let Some(count) = self.count_named(output, last) {
                        self.switch_done(Some(prefix), count);
                    }
                    continue;
                }
                _ => {}
            }
            if let (Some(name), Output::Event(Event::Rejected { id, .. })) = (waiting.name, output)
            {
                // Never placed: its name is free again.
                self.client_ids.free(id, name);
            }
            if waiting.ts != 0 {
                let micros = api::now_micros().saturating_sub(waiting.ts / 1_000).max(1);
                let stats = &mut self.stats;
                let _ = stats.command_latency.record(micros);
                if let Some(name) = waiting.kind.command() {
                    let _ = stats.latency_by_command[name as usize].record(micros);
                }
            }
            self.answer(waiting, output);
        }
        self.drained = drained;
    }

    /// Answers `GET /orders` and `GET /order/{id}` requests the replica finished.
    /// The replica may finish before this thread has read the barrier; such
    /// an answer waits in `early_answers`.
    pub(super) fn take_replica_answers(&mut self) {
        while let Ok(answer) = self.answers.try_recv() {
            match take_ticket(&mut self.awaiting_replica, answer.ticket, |w| w.ticket) {
                Some(waiting) => self.replica_answered(waiting, answer),
                None => self.early_answers.push(answer),
            }
        }
    }

    /// Counts one outcome of a batch of cancels by name prefix; after the
    /// `last`, how many of the batch cancelled (an order that finished
    /// before its cancel came is not counted).
    fn count_named(&mut self, output: Output, last: bool) -> Option<u64> {
        if let Output::Event(Event::Cancelled(_)) = output {
            self.named_cancelled += 1;
        }
        last.then(|| std::mem::take(&mut self.named_cancelled))
    }

    /// A read the replica finished, for the request that waits for it:
    /// its body is the answer, or (by name prefix) the orders to cancel.
    fn replica_answered(&mut self, waiting: InFlight, answer: ReplicaAnswer) {
        match waiting.kind {
            Awaiting::Named => self.cancel_named(waiting, &answer.orders),
            Awaiting::SwitchNamed { prefix } => self.switch_listed(prefix, &answer.orders),
            _ => {
                let conn = self.connections[waiting.slot].as_mut();
                if let Some(conn) = conn.filter(|c| c.serial == waiting.serial) {
                    conn.replica_reads -= 1;
                }
                match answer.status {
                    // Abandoned (its connection closed), not built.
                    0 => {}
                    503 => self.refuse_listing(&waiting),
                    status => self.complete_large(&waiting, status, answer.body),
                }
            }
        }
    }

    pub(super) fn answer(&mut self, waiting: InFlight, output: Output) {
        match waiting.kind {
            Awaiting::BatchItem { first, last, of } => {
                return self.answer_batch_item(&waiting, output, of, (first, last));
            }
            Awaiting::NamedCancel { last } => {
                if let Some(count) = self.count_named(output, last) {
                    self.complete(&waiting, 200, cancelled_count(count).as_bytes());
                }
                return;
            }
            _ => {}
        }
        self.scratch.clear();
        let mut body = std::mem::take(&mut self.scratch);
        let status = match (waiting.kind, output) {
            (Awaiting::Command(name), output) => {
                self.write_outcome(&mut body, name, output, waiting.name)
            }
            (
                Awaiting::Replica | Awaiting::Named | Awaiting::SwitchNamed { .. },
                Output::Barrier(_),
            ) => {
                // The replica builds this one; it arrives through `answers`.
                self.scratch = body;
                match take_ticket(&mut self.early_answers, waiting.ticket, |l| l.ticket) {
                    Some(answer) => self.replica_answered(waiting, answer),
                    None => self.awaiting_replica.push(waiting),
                }
                return;
            }
            (_, other) => {
                crate::log_line!("orderbook: unexpected answer {other:?}");
                detail(&mut body, 500, "Internal error")
            }
        };
        self.complete(&waiting, status, body.as_bytes());
        self.scratch = body;
    }

    /// Writes a command's outcome as its single request (`POST /order/`,
    /// `PUT`, `DELETE`) answers it: the order, a success message, or a
    /// refusal's `{"detail"}`; returns the status.
    pub(super) fn write_outcome(
        &self,
        body: &mut String,
        name: CommandName,
        output: Output,
        client_id: Option<ClientOrderId>,
    ) -> u16 {
        match (name, output) {
            (CommandName::Place, Output::Event(Event::Accepted(order))) => {
                self.wire.placed(body, &order);
                api::client_id_field(body, client_id.as_ref());
                200
            }
            (CommandName::Modify, Output::Event(Event::Modified(_))) => {
                body.push_str(MODIFIED);
                200
            }
            (CommandName::Cancel, Output::Event(Event::Cancelled(_))) => {
                body.push_str(CANCELLED);
                200
            }
            (CommandName::CancelAll, Output::Event(Event::CancelledAll { count })) => {
                body.push_str(&cancelled_count(count));
                200
            }
            (name, Output::Event(Event::Rejected { reason, .. })) => rejection(body, name, reason),
            (_, other) => {
                crate::log_line!("orderbook: unexpected answer {other:?}");
                detail(body, 500, "Internal error")
            }
        }
    }

    /// Answers a listing 503 instead of keeping it: listings built and not
    /// yet read hold `--max-listing-bytes`.
    fn refuse_listing(&mut self, waiting: &InFlight) {
        self.stats.listings_refused += 1;
        let detail = format!(
            "Listings built and not yet read by their clients hold the {} bytes \
             --max-listing-bytes allows; retry shortly",
            self.listing_memory.max()
        );
        self.complete_error(waiting, &ApiError::unavailable(&detail));
    }

    /// Adds one command's outcome to its batch's answer, a JSON list in the
    /// batch's order: as its single request would be answered, a refusal
    /// as `{"status_code": 422, "detail": "..."}`. The last sends the whole
    /// list.
    pub(super) fn answer_batch_item(
        &mut self,
        waiting: &InFlight,
        output: Output,
        of: CommandName,
        (first, last): (bool, bool),
    ) {
        let mut body = std::mem::take(&mut self.batch_body);
        if first {
            body.clear();
            body.push('[');
        } else {
            body.push(',');
        }
        let start = body.len();
        let status = self.write_outcome(&mut body, of, output, waiting.name);
        if status != 200 {
            // `{"detail":...}` becomes `{"status_code":N,"detail":...}`.
            body.insert_str(start + 1, &format!("\"status_code\":{status},"));
        }
        if last {
            body.push(']');
            self.complete(waiting, 200, body.as_bytes());
        }
        self.batch_body = body;
    }
}

fn detail(body: &mut String, status: u16, text: &str) -> u16 {
    body.push_str(&String::from_utf8_lossy(
        &ApiError::new(status, text).body(),
    ));
    status
}

/// The answer to a modify that modified.
const MODIFIED: &str = "{\"success\":true,\"message\":\"Order modified\"}";

/// The answer to a cancel that cancelled.
const CANCELLED: &str = "{\"success\":true,\"message\":\"Order cancelled\"}";

/// The answer to `DELETE /orders`: how many orders it cancelled.
pub(super) fn cancelled_count(count: u64) -> String {
    format!("{{\"success\":true,\"message\":\"Orders cancelled\",\"cancelled\":{count}}}")
}

/// Maps an engine rejection to the contract's status and detail.
fn rejection(body: &mut String, name: CommandName, reason: RejectReason) -> u16 {
    match (name, reason) {
        (CommandName::Modify, RejectReason::NotResting) => {
            detail(body, 404, "Order not found or unable to modify")
        }
        (_, RejectReason::NotResting) => detail(body, 404, "Order not found"),
        (_, RejectReason::QuantityNotAboveFilled) => detail(
            body,
            422,
            "quantity: must be above the quantity already filled",
        ),
        (_, RejectReason::ZeroPrice) => detail(body, 422, "price: must be positive"),
        (_, RejectReason::ZeroQuantity) => detail(body, 422, "quantity: must be positive"),
        (_, RejectReason::DuplicateId) => detail(body, 500, "Order id collision; retry"),
        (_, RejectReason::WouldTake) => detail(
            body,
            422,
            "post_only: the order would trade on arrival; it was not placed",
        ),
    }
}
