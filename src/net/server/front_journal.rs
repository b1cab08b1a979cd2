//! The journal as the I/O thread writes it: every command staged on the
//! ring is appended here and written (one `write` per publish, and one
//! `fdatasync` under `--fsync`) before the ring is published, so no
//! command reaches the engine, and no answer can leave, before its record
//! is in the kernel.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::api::ClientOrderId;
use crate::engine::Command;
use crate::metrics;
use crate::persist::journal::{self, Record};
use crate::persist::segments::{SegmentWriter, Syncer};

/// The journal as the front writes it: records of the commands staged
/// since the last publish, written in one `write` (and one `fdatasync`
/// under `--fsync`) just before the ring is published: group commit with
/// no extra thread on the path of an order.
pub struct FrontJournal {
    writer: SegmentWriter,
    buffer: Vec<u8>,
    records: u64,
    /// The sequence number of the next record.
    next_seq: u64,
    /// Under `--fsync`: the thread that makes records durable; answers
    /// wait for it.
    syncer: Option<Syncer>,
}

impl FrontJournal {
    /// Journals into `writer`, numbering records from `next_seq`. Under
    /// `--fsync`, [`Front::set_syncer`](super::Front::set_syncer) then makes answers wait until their
    /// record is on disk.
    pub fn new(writer: SegmentWriter, next_seq: u64) -> Self {
        FrontJournal {
            writer,
            buffer: Vec::with_capacity(1 << 16),
            records: 0,
            next_seq,
            syncer: None,
        }
    }

    /// Under `--fsync`: answers wait until `syncer` has their record on disk.
    pub(super) fn set_syncer(&mut self, syncer: Syncer) {
        self.syncer = Some(syncer);
    }

    /// The sequence number of the newest record appended.
    pub(super) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Every record up to this one may be answered for.
    pub(super) fn durable(&self) -> u64 {
        self.syncer.as_ref().map_or(u64::MAX, Syncer::durable)
    }

    /// Appends a command's record (with a place's `client_order_id`);
    /// `batch_continues` on every command of a
    /// batch but its last, so that a crash or a failed write in the middle
    /// of the batch's records drops the whole batch at the next start.
    pub(super) fn append(
        &mut self,
        command: Command,
        client_id: Option<ClientOrderId>,
        batch_continues: bool,
    ) {
        journal::write_batch_record(
            &mut self.buffer,
            &Record {
                seq: self.next_seq,
                command,
                client_id,
            },
            batch_continues,
        );
        self.next_seq += 1;
        self.records += 1;
    }

    /// Writes what was appended. A journal that cannot be written stops the
    /// process: going on would answer commands that a crash would lose.
    pub(super) fn write(&mut self, metrics: &metrics::Shared) {
        if self.buffer.is_empty() {
            return;
        }
        let started = Instant::now();
        let rotated = match self.writer.append(&self.buffer, self.next_seq) {
            Ok(rotated) => rotated,
            Err(error) => {
                crate::log_line!("orderbook: cannot write the journal: {error}; stopping");
                std::process::exit(1);
            }
        };
        if let Some(syncer) = &self.syncer {
            if rotated {
                match self.writer.current_file() {
                    Ok(file) => syncer.switch_to(file),
                    Err(error) => {
                        crate::log_line!("orderbook: cannot reopen the journal: {error}; stopping");
                        std::process::exit(1);
                    }
                }
            }
            syncer.written(self.next_seq - 1);
        }
        let took = started.elapsed().as_micros() as u64;
        metrics
            .journal_records
            .fetch_add(self.records, Ordering::Relaxed);
        metrics.journal_batches.fetch_add(1, Ordering::Relaxed);
        metrics
            .journal_bytes
            .fetch_add(self.buffer.len() as u64, Ordering::Relaxed);
        if let Ok(mut histogram) = metrics.journal_write.lock() {
            let _ = histogram.record(took.max(1));
        }
        self.buffer.clear();
        self.records = 0;
    }
}
