//! The persister thread: a reader of the output ring that appends every
//! accepted command to the journal, as many as have arrived in one write
//! (group commit), then advances the [`DurableCursor`]. The front answers
//! nothing past that cursor, so a client hears of a command only once its
//! record is in the kernel (and on disk under `--fsync`): the LMAX way,
//! where responses wait for the journaller's cursor instead of the I/O
//! thread writing the journal itself. That keeps file writes off the I/O
//! thread and lets one `fdatasync` cover every command that arrived while
//! the previous one ran.

use std::io;
use std::process;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;

use super::journal::{self, Record};
use super::segments::SegmentWriter;
use crate::engine::{Command, Event};
use crate::matching::Output;
use crate::metrics;
use crate::ring::{Subscriber, WaitResult, Wake};

/// How far the output stream is journaled: every output item before this
/// position may be answered. The persister advances it; the front reads it
/// and sleeps on it.
///
/// Waking uses the same Dekker handshake as the rings (`ring::wait`): the
/// front raises `sleeping`, fences, re-checks the position; the persister
/// stores the position, fences, and wakes the front only if the flag is up.
pub struct DurableCursor {
    position: CachePadded<AtomicU64>,
    sleeping: CachePadded<AtomicBool>,
    waker: OnceLock<Arc<dyn Wake>>,
}

impl DurableCursor {
    /// A cursor at `position` (the output items already behind the front).
    pub fn new(position: u64) -> Self {
        DurableCursor {
            position: CachePadded::new(AtomicU64::new(position)),
            sleeping: CachePadded::new(AtomicBool::new(false)),
            waker: OnceLock::new(),
        }
    }

    /// Sets how to wake the front; once, before the persister starts.
    pub fn set_waker(&self, waker: Arc<dyn Wake>) {
        let _ = self.waker.set(waker);
    }

    /// Output items journaled so far.
    #[inline]
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    fn advance(&self, position: u64) {
        self.position.store(position, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            if let Some(waker) = self.waker.get() {
                waker.wake();
            }
        }
    }

    /// The front's half of the handshake: true if it may block, having read
    /// up to `read` and nothing more being journaled; then call
    /// [`finish_sleep`](Self::finish_sleep) after waking.
    pub fn prepare_sleep(&self, read: u64) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.position.load(Ordering::Acquire) > read {
            self.sleeping.store(false, Ordering::Relaxed);
            false
        } else {
            true
        }
    }

    /// Lowers the front's sleeping flag.
    pub fn finish_sleep(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs the persister on a thread named `persister`. Records are numbered
/// from `next_seq`. It returns, with the next sequence number, once the
/// output ring closes and everything is written. A journal that cannot be
/// written stops the process: answering without it would break the
/// promise of every 2xx.
pub fn spawn(
    mut writer: SegmentWriter,
    mut outputs: Subscriber<Output>,
    mut next_seq: u64,
    cursor: Arc<DurableCursor>,
    metrics: Arc<metrics::Shared>,
) -> io::Result<JoinHandle<u64>> {
    thread::Builder::new()
        .name("persister".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(1 << 16);
            let mut pending: Option<Command> = None;
            let mut matching_latency = metrics::latency_histogram();
            loop {
                // One clock read a batch: every outcome in it left the
                // matching thread before this point.
                let read_at = now_micros();
                let mut records = 0u64;
                let read = outputs.drain(usize::MAX, |output| match *output {
                    Output::Command(command) => pending = Some(command),
                    Output::Event(event) if event.is_outcome() => {
                        if let Some(command) = pending.take() {
                            let _ = matching_latency
                                .record(read_at.saturating_sub(command.ts / 1_000).max(1));
                            if !matches!(event, Event::Rejected { .. }) {
                                journal::write_record(
                                    &mut batch,
                                    &Record {
                                        seq: next_seq,
                                        command,
                                    },
                                );
                                next_seq += 1;
                                records += 1;
                            }
                        }
                    }
                    _ => {}
                });
                if read == 0 {
                    if outputs.wait() == WaitResult::Closed {
                        return next_seq;
                    }
                    continue;
                }
                if !batch.is_empty() {
                    let started = Instant::now();
                    if let Err(error) = writer.append(&batch, next_seq) {
                        eprintln!("orderbook: cannot write the journal: {error}; stopping");
                        process::exit(1);
                    }
                    let took = started.elapsed().as_micros() as u64;
                    metrics
                        .journal_records
                        .fetch_add(records, Ordering::Relaxed);
                    metrics.journal_batches.fetch_add(1, Ordering::Relaxed);
                    metrics
                        .journal_bytes
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if let Ok(mut histogram) = metrics.journal_write.lock() {
                        let _ = histogram.record(took.max(1));
                    }
                    batch.clear();
                }
                cursor.advance(outputs.position());
                if !matching_latency.is_empty() {
                    if let Ok(mut histogram) = metrics.matching_latency.lock() {
                        let _ = histogram.add(&matching_latency);
                    }
                    matching_latency.reset();
                }
            }
        })
}
