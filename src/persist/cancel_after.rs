//! The cancel-all deadline's file (`POST /orders/cancel_all_after`): the
//! time at which every resting order is cancelled unless a client moves
//! it first. It is kept apart from the journal because it is not a
//! command: the engine never sees it, only the front's clock does. Kept
//! on disk so that a switch armed before a crash or a restart still goes
//! off: a deadline that passed while the service was down fires at start,
//! before any client is served.
//!
//! The file is `{"trigger_time": "<RFC 3339>", "timeout_ms": N}`, replaced
//! by a rename each time the deadline moves and removed when it is
//! disarmed. When it goes off, the file gains `"fired_seq"`: the journal
//! record of the cancel-all it sent. A start that finds that record
//! recovered knows the switch went off; one that does not (the crash came
//! before the record was written) sends the cancel-all again. So it goes
//! off exactly once whenever the crash comes. The file is removed once
//! the record is durable. A file that cannot be read stops the start, as
//! a damaged state file does: starting without it would leave orders
//! resting that the client asked to have cancelled.
//!
//! A switch that covers only the orders named with a prefix
//! (`"client_order_id_prefix"` in the call) has a file of its own in
//! `cancel_all_after.d/`, named by the prefix's bytes in hex (a prefix
//! may hold `/`), holding the prefix too. Each switch moves and fires on
//! its own; the journal rule is the same, the record being the last
//! cancel of the batch it sent (a batch's records are kept whole or not
//! at all).

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::snapshot;
use crate::api::{parse_timestamp, write_timestamp, ClientOrderId};

/// The file's name in the data directory.
pub const FILE: &str = "cancel_all_after.json";

/// The directory of the switches by name prefix, in the data directory.
pub const PREFIX_DIR: &str = "cancel_all_after.d";

/// An armed deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// When every resting order is cancelled: microseconds since the epoch.
    pub trigger_micros: u64,
    /// The timeout the client set, which each refresh starts again.
    pub timeout_ms: u64,
    /// Once it went off: the journal record of its cancel-all.
    pub fired_seq: Option<u64>,
}

impl Deadline {
    /// The deadline `timeout_ms` after `now_micros`.
    pub fn after(now_micros: u64, timeout_ms: u64) -> Self {
        Deadline {
            trigger_micros: now_micros.saturating_add(timeout_ms.saturating_mul(1_000)),
            timeout_ms,
            fired_seq: None,
        }
    }

    /// Whether the start that recovered the journal up to `recovered_seq`
    /// finds it gone off: its cancel-all's record is among those.
    pub fn fired_by(&self, recovered_seq: u64) -> bool {
        self.fired_seq.is_some_and(|seq| seq <= recovered_seq)
    }

    /// The file's JSON, for the switch of `prefix` (or of every order).
    fn to_json(self, prefix: Option<&ClientOrderId>) -> String {
        let mut out = String::from("{");
        if let Some(prefix) = prefix {
            out.push_str(&format!(
                "\"client_order_id_prefix\":\"{}\",",
                prefix.as_str()
            ));
        }
        out.push_str("\"trigger_time\":\"");
        write_timestamp(&mut out, self.trigger_micros.saturating_mul(1_000));
        out.push_str(&format!("\",\"timeout_ms\":{}", self.timeout_ms));
        if let Some(seq) = self.fired_seq {
            out.push_str(&format!(",\"fired_seq\":{seq}"));
        }
        out.push('}');
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    #[serde(default)]
    client_order_id_prefix: Option<String>,
    trigger_time: String,
    timeout_ms: u64,
    #[serde(default)]
    fired_seq: Option<u64>,
}

/// Reads a deadline file's bytes: the prefix of the orders it covers
/// (`None`: every order) and the deadline.
pub fn parse(bytes: &[u8]) -> Result<(Option<ClientOrderId>, Deadline), String> {
    let layout: Layout = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let trigger = parse_timestamp(&layout.trigger_time)
        .ok_or_else(|| format!("trigger_time {:?} is not a time", layout.trigger_time))?;
    let prefix = layout
        .client_order_id_prefix
        .map(|text| {
            ClientOrderId::parse(&text)
                .ok_or_else(|| format!("client_order_id_prefix {text:?} is not a name"))
        })
        .transpose()?;
    let deadline = Deadline {
        trigger_micros: trigger / 1_000,
        timeout_ms: layout.timeout_ms,
        fired_seq: layout.fired_seq,
    };
    Ok((prefix, deadline))
}

/// Every switch kept in the data directory `dir`, each with its file:
/// the one of every order first, then those by prefix. An error names a
/// file that cannot be read, and leaves it as it is.
pub fn load_all(dir: &Path, sync: bool) -> Result<Vec<(DeadlineFile, Deadline)>, String> {
    let mut switches = Vec::new();
    let every = DeadlineFile::new(dir, sync);
    if let Some(deadline) = every.load()? {
        switches.push((every, deadline));
    }
    let prefixed = dir.join(PREFIX_DIR);
    let entries = match fs::read_dir(&prefixed) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(switches),
        Err(error) => return Err(format!("cannot read {}: {error}", prefixed.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", prefixed.display()))?;
        // A `.tmp` is a store cut short: the file it was to replace holds.
        if entry.path().extension().is_some_and(|ext| ext == "json") {
            paths.push(entry.path());
        }
    }
    paths.sort();
    for path in paths {
        let cannot = |why: String| format!("cannot read {}: {why}", path.display());
        let bytes = fs::read(&path).map_err(|e| cannot(e.to_string()))?;
        let (prefix, deadline) = parse(&bytes).map_err(cannot)?;
        let prefix = prefix.ok_or_else(|| cannot("no client_order_id_prefix".into()))?;
        let file = DeadlineFile::for_prefix(dir, sync, prefix);
        if file.path != path {
            return Err(cannot(format!(
                "its prefix {:?} is kept in {}",
                prefix.as_str(),
                file.path.display()
            )));
        }
        switches.push((file, deadline));
    }
    Ok(switches)
}

/// The deadline's file in a data directory.
#[derive(Debug)]
pub struct DeadlineFile {
    path: PathBuf,
    /// The prefix of the orders its switch covers; `None`: every order.
    prefix: Option<ClientOrderId>,
    /// `--fsync`: the file and its directory are synced before a change
    /// is answered, so an armed switch survives a power cut too.
    sync: bool,
}

impl DeadlineFile {
    /// The file in `dir`, synced on each change under `sync`.
    pub fn new(dir: &Path, sync: bool) -> Self {
        DeadlineFile {
            path: dir.join(FILE),
            prefix: None,
            sync,
        }
    }

    /// The file of the switch of the orders named with `prefix`, in `dir`.
    pub fn for_prefix(dir: &Path, sync: bool, prefix: ClientOrderId) -> Self {
        let hex: String = prefix
            .as_str()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        DeadlineFile {
            path: dir.join(PREFIX_DIR).join(format!("{hex}.json")),
            prefix: Some(prefix),
            sync,
        }
    }

    /// The prefix of the orders its switch covers; `None`: every order.
    pub fn prefix(&self) -> Option<ClientOrderId> {
        self.prefix
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The armed deadline, if the file is there. An error names the file
    /// and what is wrong with it; the file is left as it is.
    pub fn load(&self) -> Result<Option<Deadline>, String> {
        let cannot = |why: String| format!("cannot read {}: {why}", self.path.display());
        match fs::read(&self.path) {
            Ok(bytes) => match parse(&bytes).map_err(cannot)? {
                (prefix, deadline) if prefix == self.prefix => Ok(Some(deadline)),
                (Some(prefix), _) => {
                    Err(cannot(format!("it names the prefix {:?}", prefix.as_str())))
                }
                (None, _) => Err(cannot("it names no client_order_id_prefix".into())),
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("cannot read {}: {error}", self.path.display())),
        }
    }

    /// Replaces the file with `deadline`: written beside it, then renamed
    /// over it, so a crash leaves the old deadline or the new, never half.
    pub fn store(&self, deadline: Deadline) -> io::Result<()> {
        let temporary = snapshot::temporary_of(&self.path);
        if self.prefix.is_some() {
            self.make_directory()?;
        }
        let mut file = File::create(&temporary)?;
        file.write_all(deadline.to_json(self.prefix.as_ref()).as_bytes())?;
        if self.sync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&temporary, &self.path)?;
        self.sync_directory()
    }

    /// Removes the file (disarmed, or fired); no file is no error.
    pub fn clear(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => self.sync_directory(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Makes the prefixes' directory, if it is not there yet (under
    /// `sync`, durably: its own entry is synced too).
    fn make_directory(&self) -> io::Result<()> {
        let Some(dir) = self.path.parent() else {
            return Ok(());
        };
        if dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(dir)?;
        match (self.sync, dir.parent()) {
            (true, Some(parent)) => File::open(parent)?.sync_all(),
            _ => Ok(()),
        }
    }

    fn sync_directory(&self) -> io::Result<()> {
        match (self.sync, self.path.parent()) {
            (true, Some(dir)) => File::open(dir)?.sync_all(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_reads_back_as_written() {
        let deadline = Deadline::after(1_764_565_200_123_456, 60_000);
        assert_eq!(deadline.trigger_micros, 1_764_565_260_123_456);
        let json = deadline.to_json(None);
        assert_eq!(
            json,
            r#"{"trigger_time":"2025-12-01T05:01:00.123456Z","timeout_ms":60000}"#
        );
        assert_eq!(parse(json.as_bytes()), Ok((None, deadline)));
        let fired = Deadline {
            fired_seq: Some(41),
            ..deadline
        };
        let json = fired.to_json(None);
        assert!(
            json.ends_with(r#""timeout_ms":60000,"fired_seq":41}"#),
            "{json}"
        );
        assert_eq!(parse(json.as_bytes()), Ok((None, fired)));
        let prefix = ClientOrderId::parse("mm/1-").unwrap();
        let json = fired.to_json(Some(&prefix));
        assert!(
            json.starts_with(r#"{"client_order_id_prefix":"mm/1-","trigger_time":"#),
            "{json}"
        );
        assert_eq!(parse(json.as_bytes()), Ok((Some(prefix), fired)));
        assert!(!deadline.fired_by(u64::MAX));
        assert!(!fired.fired_by(40), "its record was not recovered");
        assert!(fired.fired_by(41));
    }

    #[test]
    fn a_damaged_file_says_what_is_wrong() {
        let bad_time = parse(br#"{"trigger_time":"soon","timeout_ms":5}"#);
        assert_eq!(bad_time, Err("trigger_time \"soon\" is not a time".into()));
        let unknown = parse(br#"{"trigger_time":"2026-12-01T00:00:00Z","timeout_ms":5,"x":1}"#);
        assert!(unknown.unwrap_err().contains("unknown field `x`"));
        let torn = parse(br#"{"trigger_time":"2026-12-01T00:0"#);
        assert!(torn.unwrap_err().contains("EOF"));
        let bad_prefix = parse(
            br#"{"client_order_id_prefix":"a b","trigger_time":"2026-12-01T00:00:00Z","timeout_ms":5}"#,
        );
        assert_eq!(
            bad_prefix,
            Err("client_order_id_prefix \"a b\" is not a name".into())
        );
    }

    #[test]
    fn the_file_is_stored_replaced_and_cleared() {
        let dir = std::env::temp_dir().join(format!("cancel-after-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = DeadlineFile::new(&dir, true);
        assert_eq!(file.load(), Ok(None));
        let first = Deadline::after(1_000_000, 5);
        file.store(first).unwrap();
        assert_eq!(file.load(), Ok(Some(first)));
        let moved = Deadline::after(2_000_000, 7);
        file.store(moved).unwrap();
        assert_eq!(file.load(), Ok(Some(moved)));
        file.clear().unwrap();
        assert_eq!(file.load(), Ok(None));
        file.clear().unwrap();
        fs::write(file.path(), b"{").unwrap();
        let error = file.load().unwrap_err();
        assert!(error.starts_with(&format!("cannot read {}: ", file.path().display())));
        assert_eq!(fs::read(file.path()).unwrap(), b"{", "left as it was");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn switches_by_prefix_are_kept_each_in_its_own_file_and_all_load() {
        let dir = std::env::temp_dir().join(format!("cancel-after-by-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(load_all(&dir, true).map(|all| all.len()), Ok(0));
        let every = DeadlineFile::new(&dir, true);
        every.store(Deadline::after(1_000_000, 5)).unwrap();
        let prefix = ClientOrderId::parse("mm/1-").unwrap();
        let mine = DeadlineFile::for_prefix(&dir, true, prefix);
        assert_eq!(mine.path(), dir.join("cancel_all_after.d/6d6d2f312d.json"));
        let deadline = Deadline::after(2_000_000, 7);
        mine.store(deadline).unwrap();
        assert_eq!(mine.load(), Ok(Some(deadline)));
        let other = DeadlineFile::for_prefix(&dir, true, ClientOrderId::parse("b").unwrap());
        other.store(Deadline::after(3_000_000, 9)).unwrap();
        // A store cut short leaves a .tmp, which is not a switch.
        fs::write(dir.join("cancel_all_after.d/62.json.tmp"), b"{").unwrap();
        let loaded: Vec<(Option<ClientOrderId>, u64)> = load_all(&dir, true)
            .unwrap()
            .iter()
            .map(|(file, deadline)| (file.prefix(), deadline.timeout_ms))
            .collect();
        assert_eq!(
            loaded,
            [
                (None, 5),
                (Some(ClientOrderId::parse("b").unwrap()), 9),
                (Some(prefix), 7)
            ]
        );
        // A file whose prefix is not its name's is damaged.
        fs::copy(mine.path(), other.path()).unwrap();
        let error = load_all(&dir, true).map(|_| ()).unwrap_err();
        assert_eq!(
            error,
            format!(
                "cannot read {}: its prefix \"mm/1-\" is kept in {}",
                other.path().display(),
                mine.path().display()
            )
        );
        assert_eq!(
            other.load(),
            Err(format!(
                "cannot read {}: it names the prefix \"mm/1-\"",
                other.path().display()
            ))
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
