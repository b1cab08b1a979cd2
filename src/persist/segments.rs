//! The journal's files: `journal-<first seq, 20 digits>.log` in the data
//! directory, each a header and framed records ([`super::journal`]). The
//! front appends to the newest and starts a new one once it passes
//! `--journal-segment-bytes`. The files are kept (the journal is the whole
//! history), unless `--prune-journal` deletes those a saved state file
//! covers. Reading back what a state file does not cover, at start, is
//! [`read_after`]; reading everything is [`read_all`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::metrics;
use crate::ring::Wake;

use super::journal::{self, Record};

const PREFIX: &str = "journal-";
const SUFFIX: &str = ".log";

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{SUFFIX}")
}

/// The journal segments in `dir`, oldest first, with their first sequence
/// number (from the name; the header is checked when read).
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix(SUFFIX))
        else {
            continue;
        };
        if let Ok(first_seq) = digits.parse::<u64>() {
            segments.push((first_seq, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// How many journal segments `dir` holds, and their total size in bytes.
pub fn disk_usage(dir: &Path) -> io::Result<(u64, u64)> {
    let segments = list(dir)?;
    let mut bytes = 0;
    for (_, path) in &segments {
        bytes += fs::metadata(path)?.len();
    }
    Ok((segments.len() as u64, bytes))
}

/// Deletes the segments of `dir` whose every record is at or before
/// `covered` (a durable state file holds them). The newest segment is
/// always kept: the front may be writing it.
pub fn prune(dir: &Path, covered: u64) -> io::Result<usize> {
    let segments = list(dir)?;
    let mut removed = 0;
    for pair in segments.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first <= covered + 1 {
            fs::remove_file(path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Allocates `bytes` of zeros to `file` (its size becomes `bytes`); false
/// if the filesystem cannot.
fn preallocate(file: &File, bytes: u64) -> bool {
    rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, bytes).is_ok()
}

/// Appends records to the newest segment and rotates segments.
pub struct SegmentWriter {
    dir: PathBuf,
    file: File,
    written: u64,
    segment_bytes: u64,
    fsync: bool,
}

impl SegmentWriter {
    /// Starts a new segment whose first record will be `next_seq`. With
    /// `fsync`, each new file's header and name are synced, and a file is
    /// synced to its end before the next one starts.
    pub fn create(dir: &Path, next_seq: u64, segment_bytes: u64, fsync: bool) -> io::Result<Self> {
        let (file, written) = Self::new_segment(dir, next_seq, fsync, segment_bytes)?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            file,
            written,
            segment_bytes,
            fsync,
        })
    }

    /// Creates the segment whose first record is `first_seq`. Under
    /// `fsync` it is preallocated to `segment_bytes` (see
    /// [`journal::Layout::Preallocated`]): a record written into allocated
    /// space changes no metadata, so `fdatasync` skips the filesystem's
    /// journal commit. Where the filesystem cannot preallocate, the file
    /// is appended to instead.
    fn new_segment(
        dir: &Path,
        first_seq: u64,
        fsync: bool,
        segment_bytes: u64,
    ) -> io::Result<(File, u64)> {
        let path = dir.join(segment_name(first_seq));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let layout = if fsync && preallocate(&file, segment_bytes) {
            journal::Layout::Preallocated
        } else {
            // A preallocation that ran out of space part way may have left
            // what it took: an appended file ends where its records end,
            // and the disk gets that space back.
            if fsync {
                file.set_len(0)?;
            }
            journal::Layout::Appended
        };
        let mut header = Vec::with_capacity(journal::HEADER_LEN);
        journal::write_header(&mut header, first_seq, layout);
        file.write_all(&header)?;
        if fsync {
            // The header, the allocation and the new name must be on disk
            // before any record in the file counts as durable.
            file.sync_all()?;
            File::open(dir)?.sync_all()?;
        }
        Ok((file, header.len() as u64))
    }

    /// Writes `records` (whole framed records, in sequence) in one system
    /// call; `fdatasync` is the [`Syncer`]'s. `next_seq` is the sequence
    /// number of the record that will follow them, for a rotation. Returns
    /// true if it started a new file (under `--fsync`, only after the old
    /// one was synced to its end).
    pub fn append(&mut self, records: &[u8], next_seq: u64) -> io::Result<bool> {
        self.file.write_all(records)?;
        self.written += records.len() as u64;
        if self.written >= self.segment_bytes {
            if self.fsync {
                self.file.sync_data()?;
            }
            let (file, written) =
                Self::new_segment(&self.dir, next_seq, self.fsync, self.segment_bytes)?;
            self.file = file;
            self.written = written;
            return Ok(true);
        }
        Ok(false)
    }

    /// Another handle on the file being written, for the [`Syncer`].
    pub fn current_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }
}

/// The `--fsync` thread: `fdatasync`s the journal up to the newest record
/// written, again and again, each call covering every record written
/// meanwhile (group commit), so the I/O thread never blocks on the disk.
/// The front answers a command only once [`durable`](Self::durable) has
/// reached its record.
pub struct Syncer {
    shared: Arc<SyncShared>,
    thread: Option<JoinHandle<()>>,
}

struct SyncShared {
    written: AtomicU64,
    durable: AtomicU64,
    file: Mutex<File>,
    stop: AtomicBool,
    failed: AtomicBool,
    wake: Arc<dyn Wake>,
}

impl Syncer {
    /// Starts the thread on `file` (the segment being written), with every
    /// record up to `durable` already on disk; `wake` is called after each
    /// sync.
    pub fn start(
        file: File,
        durable: u64,
        wake: Arc<dyn Wake>,
        metrics: Arc<metrics::Shared>,
    ) -> io::Result<Syncer> {
        let shared = Arc::new(SyncShared {
            written: AtomicU64::new(durable),
            durable: AtomicU64::new(durable),
            file: Mutex::new(file),
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            wake,
        });
        let worker = shared.clone();
        let thread = thread::Builder::new()
            .name("syncer".into())
            .spawn(move || loop {
                let target = worker.written.load(Ordering::Acquire);
                if target > worker.durable.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let synced = match worker.file.lock() {
                        Ok(file) => file.sync_data(),
                        Err(_) => Err(io::Error::other("journal file lock poisoned")),
                    };
                    metrics.journal_syncs.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut histogram) = metrics.journal_sync.lock() {
                        let _ = histogram.record(started.elapsed().as_micros() as u64);
                    }
                    if let Err(error) = synced {
                        crate::log_line!("orderbook: cannot sync the journal: {error}; stopping");
                        worker.failed.store(true, Ordering::Release);
                        std::process::exit(1);
                    }
                    worker.durable.store(target, Ordering::Release);
                    worker.wake.wake();
                } else if worker.stop.load(Ordering::Acquire) {
                    return;
                } else {
                    thread::park_timeout(Duration::from_millis(50));
                }
            })?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Records up to `seq` are written: sync them.
    pub fn written(&self, seq: u64) {
        self.shared.written.store(seq, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }

    /// The journal moved to a new file (the old one is synced to its end).
    pub fn switch_to(&self, file: File) {
        if let Ok(mut current) = self.shared.file.lock() {
            *current = file;
        }
    }

    /// Every record up to this sequence number is on disk.
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// What [`read_after`] found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The records after the requested sequence number, in order.
    pub records: Vec<Record>,
    /// Warnings for the operator (a torn tail that was cut).
    pub warnings: Vec<String>,
}

/// Reads every record of the journal in `dir` after `covered` (what the
/// state file already holds); files wholly at or before it are not read.
/// A torn tail of the newest segment is cut off the file (with a warning);
/// a damaged record anywhere else, a bad header, or a gap in the sequence
/// is an error naming the file and the problem, and no file is changed
/// then.
pub fn read_after(dir: &Path, covered: u64) -> Result<Replay, String> {
    // The journal starting after what the state file covers means records
    // are missing, even when no record is left to show it (a pruned
    // journal's newest file, empty, and no state file given): checked
    // before anything is read or cut.
    if let Some(oldest) = oldest_record(dir)?.filter(|&first| first > covered + 1) {
        return Err(missing(dir, oldest, covered));
    }
    let newest_file = list(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .last()
        .map(|(first, _)| *first);
    let mut replay = Replay::default();
    let mut newest_read = None;
    let (warnings, cut) = walk(dir, covered, true, |record| {
        newest_read = Some(record.seq);
        if record.seq > covered {
            replay.records.push(record);
        }
        true
    })?;
    replay.warnings = warnings;
    // The newest file is always read: its last record, or the one before
    // its first if it holds none yet, is where the journal ends.
    let journal_end = newest_read.or(newest_file.map(|first| first.saturating_sub(1)));
    if let Some(end) = journal_end.filter(|&end| end < covered) {
        replay.warnings.push(format!(
            "the journal in {} ends at record {end}, but the state file covers up to {covered}: records {} to {covered} are only in the state file (a journal restored from an older copy, or lost in a power cut without --fsync?)",
            dir.display(),
            end + 1
        ));
    }
    if let Some(first) = replay.records.first() {
        if first.seq != covered + 1 {
            return Err(missing(dir, first.seq, covered));
        }
    }
    if let Some(Cut {
        path,
        keep,
        torn,
        unfinished_batch,
    }) = cut
    {
        let file = OpenOptions::new().write(true).open(&path).map_err(|e| {
            format!(
                "cannot open {} to cut it after its records: {e}",
                path.display()
            )
        })?;
        file.set_len(keep)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot cut {} after its records: {e}", path.display()))?;
        if torn > 0 {
            replay.warnings.push(format!(
                "journal file {}: cut {} ({torn} bytes) left by a crash or a failed write in mid-write",
                path.display(),
                torn_tail(unfinished_batch)
            ));
        }
    }
    Ok(replay)
}

/// Hands every record of the journal in `dir` from record `from` on to
/// `each`, oldest first, until it returns false, changing no file: a
/// service may be writing the newest one, so an unfinished record at its
/// end is a warning, not an error. Files wholly before `from` are not read;
/// in those that are, damage before good data, a bad header or a gap is an
/// error, as at start. Returns the warnings.
pub fn read_all(
    dir: &Path,
    from: u64,
    mut each: impl FnMut(Record) -> bool,
) -> Result<Vec<String>, String> {
    let covered = from.saturating_sub(1);
    let (mut warnings, cut) = walk(dir, covered, false, |record| {
        record.seq <= covered || each(record)
    })?;
    if let Some(oldest) = oldest_record(dir)?.filter(|&first| first > from.max(1)) {
        warnings.insert(
            0,
            format!(
                "the journal in {} starts at record {oldest}: the records before it were deleted (--prune-journal)",
                dir.display()
            ),
        );
    }
    if let Some(Cut {
        path,
        torn,
        unfinished_batch,
        ..
    }) = cut.filter(|cut| cut.torn > 0)
    {
        warnings.push(format!(
            "journal file {}: ends in {} ({torn} bytes; a crash in mid-write, or a write in progress), not printed",
            path.display(),
            torn_tail(unfinished_batch)
        ));
    }
    Ok(warnings)
}

/// The first record of the oldest journal file in `dir` (by its name), if
/// any: where the journal starts, once `--prune-journal` deleted older
/// files.
fn oldest_record(dir: &Path) -> Result<Option<u64>, String> {
    let segments = list(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    Ok(segments.first().map(|(first, _)| *first))
}

/// Why a journal resuming at record `resumes` cannot follow a state file
/// covering up to `covered`.
fn missing(dir: &Path, resumes: u64, covered: u64) -> String {
    format!(
        "the journal in {} resumes at record {resumes}, but the state file covers only up to {covered}: records are missing (the state file that covers them is elsewhere, or --state-file was not given?)",
        dir.display()
    )
}

/// What follows the records of the newest file: a torn tail, a
/// preallocated file's unused room, or both.
struct Cut {
    path: PathBuf,
    /// The file's length without it.
    keep: u64,
    /// The torn tail's bytes (0 if none: only room).
    torn: usize,
    /// Whole records in it: those of a batch whose last record is missing.
    unfinished_batch: usize,
}

/// What a torn tail holds, in words.
fn torn_tail(unfinished_batch: usize) -> String {
    match unfinished_batch {
        0 => "a torn last record".to_owned(),
        1 => "the first record of a batch whose last was never written".to_owned(),
        n => format!("the first {n} records of a batch whose last was never written"),
    }
}

/// Checks and hands to `each` the records of every segment of `dir` but
/// those wholly at or before `covered`, until it returns false. With
/// `repair`, a newest file cut short before its header is removed;
/// without, it is reported.
fn walk(
    dir: &Path,
    covered: u64,
    repair: bool,
    mut each: impl FnMut(Record) -> bool,
) -> Result<(Vec<String>, Option<Cut>), String> {
    let segments = list(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut warnings = Vec::new();
    let mut expected = None::<u64>;
    let mut cut = None;
    for (i, (named_first, path)) in segments.iter().enumerate() {
        let newest = i + 1 == segments.len();
        if !newest && segments[i + 1].0 <= covered + 1 {
            // Every record of this file is in the state file: the journal
            // keeps all history, and a start must not read all of it.
            continue;
        }
        let data = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let problem = |what: String| format!("journal file {} is corrupt: {what}", path.display());
        if newest && (data.len() < journal::HEADER_LEN || data.iter().all(|&b| b == 0)) {
            // A crash while the newest file was being started, before its
            // header was whole (or, preallocated, written at all): no
            // record was ever in it.
            let done = if repair {
                fs::remove_file(path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                "removed, it was"
            } else {
                "it is"
            };
            warnings.push(format!(
                "journal file {}: {done} cut short ({} bytes, no header) before its first record",
                path.display(),
                data.len()
            ));
            break;
        }
        let header = journal::read_header(&data).map_err(|e| problem(e.to_string()))?;
        let first = header.first_seq;
        if first != *named_first {
            return Err(problem(format!(
                "its header starts at record {first}, its name at {named_first}"
            )));
        }
        let scan = journal::scan_records(&data[journal::HEADER_LEN..], header.layout)
            .map_err(|e| problem(e.in_file().to_string()))?;
        if scan.torn_bytes > 0 && !newest {
            return Err(problem(format!(
                "{} bytes at its end are not a whole record, and newer files follow",
                scan.torn_bytes
            )));
        }
        // The newest file is cut where its records end: past them is a torn
        // tail, or (preallocated under --fsync) room no record will use,
        // since a start writes on in a new file.
        let records_end = journal::HEADER_LEN + scan.good_len;
        if newest && data.len() > records_end {
            cut = Some(Cut {
                path: path.clone(),
                keep: records_end as u64,
                torn: scan.torn_bytes,
                unfinished_batch: scan.unfinished_batch,
            });
        }
        let mut next = expected.unwrap_or(first);
        if first != next {
            return Err(problem(format!(
                "it starts at record {first} but the previous file ended before {next}"
            )));
        }
        for record in scan.records {
            if record.seq != next {
                return Err(problem(format!(
                    "record {} found where {next} was expected",
                    record.seq
                )));
            }
            next += 1;
            if !each(record) {
                return Ok((warnings, None));
            }
        }
        expected = Some(next);
    }
    Ok((warnings, cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Command, CommandKind};

    #[test]
    fn a_torn_tail_is_told_in_words_that_count_its_records() {
        assert_eq!(torn_tail(0), "a torn last record");
        assert_eq!(
            torn_tail(1),
            "the first record of a batch whose last was never written"
        );
        assert_eq!(
            torn_tail(29),
            "the first 29 records of a batch whose last was never written"
        );
    }

    fn record(seq: u64) -> Record {
        Record {
            seq,
            command: Command {
                ts: seq * 1_000,
                kind: CommandKind::Cancel { id: seq as u128 },
            },
            client_id: None,
        }
    }

    fn encoded(seqs: std::ops::RangeInclusive<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in seqs {
            journal::write_record(&mut out, &record(seq));
        }
        out
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("orderbook-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn segments_rotate_read_back_in_order_and_prune() {
        let dir = temp_dir("segments");
        // Rotate after every append of 10 records (~40 bytes each).
        let mut writer = SegmentWriter::create(&dir, 1, 200, false).unwrap();
        for batch in 0..5u64 {
            let first = batch * 10 + 1;
            writer
                .append(&encoded(first..=first + 9), first + 10)
                .unwrap();
        }
        let names: Vec<u64> = list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(names, [1, 11, 21, 31, 41, 51]);
        let replay = read_after(&dir, 15).unwrap();
        let seqs: Vec<u64> = replay.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (16..=50).collect::<Vec<_>>());
        assert!(replay.warnings.is_empty());
        // Records up to 25 are in a state file: segments 1 and 11 go, 21 stays.
        assert_eq!(prune(&dir, 25).unwrap(), 2);
        let names: Vec<u64> = list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(names, [21, 31, 41, 51]);
        assert_eq!(read_after(&dir, 25).unwrap().records.len(), 25);
        // A state file older than the journal's start means lost records.
        let error = read_after(&dir, 10).unwrap_err();
        assert!(error.contains("records are missing"), "{error}");
        // One newer than the journal's end (newest file 51, empty) starts,
        // with a warning.
        assert!(read_after(&dir, 50).unwrap().warnings.is_empty());
        let ahead = read_after(&dir, 57).unwrap();
        assert!(ahead.records.is_empty());
        assert_eq!(
            ahead.warnings,
            [format!(
                "the journal in {} ends at record 50, but the state file covers up to 57: records 51 to 57 are only in the state file (a journal restored from an older copy, or lost in a power cut without --fsync?)",
                dir.display()
            )]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_start_skips_covered_files_and_read_all_reads_everything_changing_nothing() {
        let dir = temp_dir("read-all");
        let mut writer = SegmentWriter::create(&dir, 1, 200, false).unwrap();
        for batch in 0..3u64 {
            let first = batch * 10 + 1;
            writer
                .append(&encoded(first..=first + 9), first + 10)
                .unwrap();
        }
        let mut half = encoded(31..=31);
        half.truncate(half.len() / 2);
        writer.append(&half, 32).unwrap();
        drop(writer);
        // Damage in the covered first file: a start never reads it.
        let oldest = dir.join(segment_name(1));
        let original = fs::read(&oldest).unwrap();
        let mut damaged = original.clone();
        damaged[original.len() / 2] ^= 0xff;
        fs::write(&oldest, &damaged).unwrap();
        let newest = list(&dir).unwrap().last().unwrap().1.clone();
        let torn_len = fs::metadata(&newest).unwrap().len();

        let mut seen = Vec::new();
        let error = read_all(&dir, 0, |record| {
            seen.push(record.seq);
            true
        })
        .unwrap_err();
        assert!(
            error.contains("journal-00000000000000000001.log is corrupt"),
            "{error}"
        );
        assert!(seen.is_empty());

        fs::write(&oldest, &original).unwrap();
        let warnings = read_all(&dir, 0, |record| {
            seen.push(record.seq);
            true
        })
        .unwrap();
        assert_eq!(seen, (1..=30).collect::<Vec<_>>());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("a write in progress"), "{warnings:?}");
        assert_eq!(
            fs::metadata(&newest).unwrap().len(),
            torn_len,
            "nothing cut"
        );
        // Stopping early hands no more records.
        seen.clear();
        read_all(&dir, 0, |record| {
            seen.push(record.seq);
            record.seq < 12
        })
        .unwrap();
        assert_eq!(seen, (1..=12).collect::<Vec<_>>());
        // From record 15: the first file (1 to 10) is not even read.
        fs::write(&oldest, &damaged).unwrap();
        seen.clear();
        read_all(&dir, 15, |record| {
            seen.push(record.seq);
            true
        })
        .unwrap();
        assert_eq!(seen, (15..=30).collect::<Vec<_>>());
        fs::write(&oldest, &original).unwrap();

        fs::write(&oldest, &damaged).unwrap();
        let replay = read_after(&dir, 10).unwrap();
        let seqs: Vec<u64> = replay.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (11..=30).collect::<Vec<_>>());
        assert!(
            fs::metadata(&newest).unwrap().len() < torn_len,
            "the start cut the tail"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn under_fsync_segments_are_preallocated_and_read_back_to_their_last_record() {
        let dir = temp_dir("preallocated");
        // 100 records of ~40 bytes: the first file fills past 2,000 bytes.
        let mut writer = SegmentWriter::create(&dir, 1, 2_000, true).unwrap();
        let first = dir.join(segment_name(1));
        assert_eq!(
            fs::metadata(&first).unwrap().len(),
            2_000,
            "allocated up front"
        );
        for batch in 0..10u64 {
            let from = batch * 10 + 1;
            writer.append(&encoded(from..=from + 9), from + 10).unwrap();
        }
        let mut half = encoded(101..=101);
        half.truncate(half.len() / 2);
        writer.append(&half, 102).unwrap();
        drop(writer);
        let segments = list(&dir).unwrap();
        assert!(segments.len() >= 2, "rotated: {segments:?}");
        for (_, path) in &segments {
            let data = fs::read(path).unwrap();
            let header = journal::read_header(&data).unwrap();
            assert_eq!(header.layout, journal::Layout::Preallocated);
        }
        let newest = segments.last().unwrap().1.clone();
        let replay = read_after(&dir, 0).unwrap();
        let seqs: Vec<u64> = replay.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        // The half record is cut, with the zeros after it.
        assert_eq!(replay.warnings.len(), 1, "{:?}", replay.warnings);
        let nonzero = half.iter().rposition(|&b| b != 0).unwrap() + 1;
        assert!(
            replay.warnings[0].contains(&format!("({nonzero} bytes)")),
            "{:?}",
            replay.warnings
        );
        let kept = fs::read(&newest).unwrap();
        let scan =
            journal::scan_records(&kept[journal::HEADER_LEN..], journal::Layout::Preallocated)
                .unwrap();
        assert_eq!(scan.torn_bytes, 0);
        assert_eq!(journal::HEADER_LEN + scan.good_len, kept.len());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_start_gives_back_the_unused_room_of_the_newest_preallocated_file() {
        let dir = temp_dir("room");
        let mut writer = SegmentWriter::create(&dir, 1, 1 << 20, true).unwrap();
        let records = encoded(1..=5);
        writer.append(&records, 6).unwrap();
        drop(writer);
        let newest = dir.join(segment_name(1));
        assert_eq!(fs::metadata(&newest).unwrap().len(), 1 << 20);
        let replay = read_after(&dir, 0).unwrap();
        assert_eq!(replay.records.len(), 5);
        assert_eq!(
            replay.warnings,
            Vec::<String>::new(),
            "room is no torn tail"
        );
        let records_end = (journal::HEADER_LEN + records.len()) as u64;
        assert_eq!(fs::metadata(&newest).unwrap().len(), records_end);
        // The next start reads the same records, and cuts nothing more.
        let again = read_after(&dir, 0).unwrap();
        let seqs: Vec<u64> = again.records.iter().map(|r| r.seq).collect();
        assert_eq!((seqs, again.warnings), ((1..=5).collect(), Vec::new()));
        assert_eq!(fs::metadata(&newest).unwrap().len(), records_end);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newest_file_preallocated_but_never_written_is_removed() {
        let dir = temp_dir("unwritten");
        let mut writer = SegmentWriter::create(&dir, 1, 1 << 20, false).unwrap();
        writer.append(&encoded(1..=10), 11).unwrap();
        drop(writer);
        // A crash between allocating the next file and writing its header.
        let unwritten = dir.join(segment_name(11));
        fs::write(&unwritten, vec![0u8; 4096]).unwrap();
        let replay = read_after(&dir, 0).unwrap();
        assert_eq!(replay.records.len(), 10);
        assert_eq!(replay.warnings.len(), 1, "{:?}", replay.warnings);
        assert!(replay.warnings[0].contains("(4096 bytes, no header)"));
        assert!(!unwritten.exists());
        // Zeros in an older file's header are corruption, not a crash.
        fs::write(dir.join(segment_name(11)), vec![0u8; 4096]).unwrap();
        let mut writer = SegmentWriter::create(&dir, 21, 1 << 20, false).unwrap();
        writer.append(&encoded(21..=21), 22).unwrap();
        drop(writer);
        let error = read_after(&dir, 0).unwrap_err();
        assert!(error.contains("bad magic"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// An appended file followed by zeros: what a preallocation that ran
    /// out of space part way left under `--fsync` (49 MB of a full disk,
    /// in a probe) before the writer gave the space back. Its records are
    /// read, and the zeros cut as a torn tail; before, the first zero
    /// frame was "corrupt" and the data directory could not start.
    #[test]
    fn zeros_after_an_appended_files_records_are_cut_as_its_torn_tail() {
        let dir = temp_dir("appended-zeros");
        let mut writer = SegmentWriter::create(&dir, 1, 1 << 20, false).unwrap();
        writer.append(&encoded(1..=5), 6).unwrap();
        drop(writer);
        let newest = dir.join(segment_name(1));
        let written = fs::metadata(&newest).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&newest)
            .unwrap()
            .set_len(written + 100_000)
            .unwrap();
        let replay = read_after(&dir, 0).unwrap();
        let seqs: Vec<u64> = replay.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=5).collect::<Vec<_>>());
        assert_eq!(replay.warnings.len(), 1, "{:?}", replay.warnings);
        assert!(
            replay.warnings[0].contains("(100000 bytes)"),
            "{:?}",
            replay.warnings
        );
        assert_eq!(fs::metadata(&newest).unwrap().len(), written);
        // Zeros with data after them are still corruption.
        let mut data = fs::read(&newest).unwrap();
        data.extend([0u8; 64]);
        data.extend(encoded(6..=6));
        fs::write(&newest, &data).unwrap();
        let error = read_after(&dir, 0).unwrap_err();
        assert!(error.contains("is corrupt"), "{error}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_tail_is_cut_and_corruption_is_refused_untouched() {
        let dir = temp_dir("torn");
        let mut writer = SegmentWriter::create(&dir, 1, 1 << 20, false).unwrap();
        writer.append(&encoded(1..=20), 21).unwrap();
        let mut half = encoded(21..=21);
        half.truncate(half.len() / 2);
        writer.append(&half, 22).unwrap();
        drop(writer);
        let path = dir.join(segment_name(1));
        let whole_len = fs::metadata(&path).unwrap().len();
        let replay = read_after(&dir, 0).unwrap();
        assert_eq!(replay.records.len(), 20);
        assert_eq!(replay.warnings.len(), 1);
        assert!(replay.warnings[0].contains(&format!("{} bytes", half.len())));
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            whole_len - half.len() as u64
        );

        // Damage inside: refused, and the file stays byte for byte.
        let mut bytes = fs::read(&path).unwrap();
        let middle = journal::HEADER_LEN + 100;
        bytes[middle] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let error = read_after(&dir, 0).unwrap_err();
        assert!(error.contains("is corrupt"), "{error}");
        assert!(error.contains(&segment_name(1)), "{error}");
        // At the damaged record's first byte in the file, header counted.
        let record_len = encoded(1..=1).len();
        let damaged_at =
            journal::HEADER_LEN + (middle - journal::HEADER_LEN) / record_len * record_len;
        assert!(
            error.ends_with(&format!(
                "corrupt record at byte {damaged_at}: checksum mismatch"
            )),
            "{error}"
        );
        assert_eq!(fs::read(&path).unwrap(), bytes);
        fs::remove_dir_all(&dir).unwrap();
    }
}
