//! The journal's on-disk format: a versioned file header, then framed
//! records `[length u32][crc32 u32][payload]`, little-endian, one record per
//! accepted command. Encoding and decoding only; no files are opened here,
//! so every corruption case is testable on byte slices.
//!
//! A record that stops short of its length at the end of the data, or whose
//! checksum fails with nothing after it, is a *torn tail* (a crash in the
//! middle of a write): recovery cuts it. A bad record with good data after
//! it is *corruption*: recovery refuses to start.
//!
//! A batch (`POST /orders/batch`, `/orders/modify`, `/orders/cancel`) is
//! one record per command, back to back, each but the last marked "the
//! batch continues" (the top bit of its kind byte, which records outside a
//! batch, and every journal written before batches, leave clear). A batch
//! whose last record is missing at the end of the data was cut by a crash
//! or a failed write before any of it was applied or answered: it is part
//! of the torn tail, so a batch comes back whole or not at all.
//!
//! Two file layouts share the record format. An *appended* file (version 1)
//! ends where its records end. A *preallocated* file (version 2, written
//! under `--fsync`) was allocated to its full size up front, so that
//! writing a record changes no file metadata and `fdatasync` need not
//! commit the filesystem's journal; its records end at the first frame
//! that is all zeros, and only zeros may follow them. In either layout, a
//! damaged record with nothing but zeros after it is the torn tail, and so
//! are zeros after an appended file's last record (blocks a crash left
//! unwritten, or room a preallocation that ran out of space left).

use std::fmt;

use crate::api::ClientOrderId;
use crate::engine::{Command, CommandKind, Side, TimeInForce};

/// First bytes of every journal file.
pub const MAGIC: [u8; 8] = *b"OBJRNL\0\0";
/// The header version of an appended file.
pub const VERSION: u32 = 1;
/// The header version of a preallocated file.
pub const VERSION_PREALLOCATED: u32 = 2;
/// Magic, version, then the sequence number of the file's first record.
pub const HEADER_LEN: usize = 8 + 4 + 8;
/// Length and checksum before each payload.
const FRAME_LEN: usize = 8;
/// Payloads larger than this are not records we wrote.
const MAX_PAYLOAD: usize = 1024;

/// One journaled command with its place in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The command's sequence number: 1, 2, 3, ... over the book's life.
    pub seq: u64,
    /// The command as the matching thread applied it.
    pub command: Command,
    /// A place's `client_order_id`, if it gave one (the engine never sees
    /// it; the replica shows it and the front looks orders up by it).
    pub client_id: Option<ClientOrderId>,
}

impl Record {
    /// The record of `command` with no `client_order_id`.
    pub fn new(seq: u64, command: Command) -> Self {
        Record {
            seq,
            command,
            client_id: None,
        }
    }
}

/// Why journal bytes cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalError {
    /// The file does not start with a journal header of a known version.
    BadHeader(String),
    /// A record in the middle of the data is damaged.
    Corrupt {
        /// Byte offset of the bad record.
        offset: usize,
        /// What is wrong with it.
        problem: String,
    },
}

impl JournalError {
    /// The error with its offset counted from the file's first byte:
    /// [`scan_records`] counts from the end of the header, and a message
    /// naming the file must point into it.
    pub fn in_file(self) -> Self {
        match self {
            JournalError::Corrupt { offset, problem } => JournalError::Corrupt {
                offset: offset + HEADER_LEN,
                problem,
            },
            other => other,
        }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::BadHeader(why) => write!(f, "bad journal header: {why}"),
            JournalError::Corrupt { offset, problem } => {
                write!(f, "corrupt record at byte {offset}: {problem}")
            }
        }
    }
}

/// How a journal file holds its records (see the module's notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The file ends where its records end.
    Appended,
    /// The file was allocated (zero-filled) to its full size first; its
    /// records end at the first all-zero frame.
    Preallocated,
}

/// What a file header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The sequence number of the file's first record.
    pub first_seq: u64,
    /// How the file holds its records.
    pub layout: Layout,
}

/// Appends a file header whose first record will be `first_seq`.
pub fn write_header(out: &mut Vec<u8>, first_seq: u64, layout: Layout) {
    let version = match layout {
        Layout::Appended => VERSION,
        Layout::Preallocated => VERSION_PREALLOCATED,
    };
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
}

/// Reads a file header.
pub fn read_header(data: &[u8]) -> Result<Header, JournalError> {
    if data.len() < HEADER_LEN {
        return Err(JournalError::BadHeader(format!(
            "{} bytes, a header needs {HEADER_LEN}",
            data.len()
        )));
    }
    if data[..8] != MAGIC {
        return Err(JournalError::BadHeader(
            "not a journal file (bad magic)".into(),
        ));
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    let layout = match version {
        VERSION => Layout::Appended,
        VERSION_PREALLOCATED => Layout::Preallocated,
        _ => {
            return Err(JournalError::BadHeader(format!(
                "version {version}, this build reads versions {VERSION} and {VERSION_PREALLOCATED}"
            )))
        }
    };
    Ok(Header {
        first_seq: u64::from_le_bytes(data[12..20].try_into().expect("8 bytes")),
        layout,
    })
}

/// The kind byte's flag: the next record belongs to the same batch.
const BATCH_CONTINUES: u8 = 0x80;

fn encode_payload(record: &Record, batch_continues: bool, out: &mut Vec<u8>) {
    let flag = if batch_continues { BATCH_CONTINUES } else { 0 };
    out.extend_from_slice(&record.seq.to_le_bytes());
    out.extend_from_slice(&record.command.ts.to_le_bytes());
    match record.command.kind {
        CommandKind::Place {
            id,
            side,
            price,
            quantity,
            tif,
        } => {
            // A good-till-cancel place keeps kind 1, the layout journals
            // had before time in force, so they read as they did; other
            // places are kind 4: the same fields, then the time in force.
            // A place with a client_order_id is kind 6: kind 4's fields
            // (GTC as 0), then the name's length and bytes.
            let tif_code = match tif {
                TimeInForce::GoodTillCancel => None,
                TimeInForce::ImmediateOrCancel => Some(1),
                TimeInForce::FillOrKill => Some(2),
                TimeInForce::PostOnly => Some(3),
            };
            let kind = match (record.client_id, tif_code) {
                (Some(_), _) => 6,
                (None, Some(_)) => 4,
                (None, None) => 1,
            };
            out.push(kind | flag);
            out.extend_from_slice(&id.to_le_bytes());
            out.push(side as i8 as u8);
            out.extend_from_slice(&price.to_le_bytes());
            out.extend_from_slice(&quantity.to_le_bytes());
            if let Some(name) = record.client_id {
                out.push(tif_code.unwrap_or(0));
                out.push(name.as_str().len() as u8);
                out.extend_from_slice(name.as_str().as_bytes());
            } else {
                out.extend(tif_code);
            }
        }
        CommandKind::Modify {
            id,
            price,
            quantity,
        } => {
            out.push(2 | flag);
            out.extend_from_slice(&id.to_le_bytes());
            out.push(u8::from(price.is_some()) | u8::from(quantity.is_some()) << 1);
            out.extend_from_slice(&price.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&quantity.unwrap_or(0).to_le_bytes());
        }
        CommandKind::Cancel { id } => {
            out.push(3 | flag);
            out.extend_from_slice(&id.to_le_bytes());
        }
        CommandKind::CancelAll { side } => {
            out.push(5 | flag);
            out.push(side.map_or(0, |side| side as i8 as u8));
        }
    }
}

/// Appends one framed record of a command on its own.
pub fn write_record(out: &mut Vec<u8>, record: &Record) {
    write_batch_record(out, record, false);
}

/// Appends one framed record of a batch: `continues` on every record of the
/// batch but its last.
pub fn write_batch_record(out: &mut Vec<u8>, record: &Record, continues: bool) {
    let frame_at = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    encode_payload(record, continues, out);
    let payload = &out[frame_at + FRAME_LEN..];
    let length = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[frame_at..frame_at + 4].copy_from_slice(&length.to_le_bytes());
    out[frame_at + 4..frame_at + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads fixed-width fields off the front of a payload.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn u128(&mut self) -> Option<u128> {
        self.take::<16>().map(u128::from_le_bytes)
    }
}

/// The side a byte written as `side as i8 as u8` stands for.
fn side_of(byte: u8) -> Option<Side> {
    match byte as i8 {
        1 => Some(Side::Buy),
        -1 => Some(Side::Sell),
        _ => None,
    }
}

/// The record, and whether its batch continues in the next one.
fn decode_payload(payload: &[u8]) -> Option<(Record, bool)> {
    let mut fields = Fields(payload);
    let seq = fields.u64()?;
    let ts = fields.u64()?;
    let kind_byte = fields.u8()?;
    let batch_continues = kind_byte & BATCH_CONTINUES != 0;
    let mut client_id = None;
    let kind = match kind_byte & !BATCH_CONTINUES {
        kind @ (1 | 4 | 6) => {
            let id = fields.u128()?;
            let side = side_of(fields.u8()?)?;
            let price = fields.u64()?;
            let quantity = fields.u64()?;
            let tif = if kind == 1 {
                TimeInForce::GoodTillCancel
            } else {
                match fields.u8()? {
                    0 if kind == 6 => TimeInForce::GoodTillCancel,
                    1 => TimeInForce::ImmediateOrCancel,
                    2 => TimeInForce::FillOrKill,
                    3 => TimeInForce::PostOnly,
                    _ => return None,
                }
            };
            if kind == 6 {
                let len = usize::from(fields.u8()?);
                let (name, rest) = fields.0.split_at_checked(len)?;
                fields.0 = rest;
                client_id = Some(ClientOrderId::parse(std::str::from_utf8(name).ok()?)?);
            }
            CommandKind::Place {
                id,
                side,
                price,
                quantity,
                tif,
            }
        }
        2 => {
            let id = fields.u128()?;
            let present = fields.u8()?;
            let price = fields.u64()?;
            let quantity = fields.u64()?;
            CommandKind::Modify {
                id,
                price: (present & 1 != 0).then_some(price),
                quantity: (present & 2 != 0).then_some(quantity),
            }
        }
        3 => CommandKind::Cancel { id: fields.u128()? },
        5 => CommandKind::CancelAll {
            side: match fields.u8()? {
                0 => None,
                byte => Some(side_of(byte)?),
            },
        },
        _ => return None,
    };
    fields.0.is_empty().then_some((
        Record {
            seq,
            command: Command { ts, kind },
            client_id,
        },
        batch_continues,
    ))
}

/// What reading the records of a journal file found.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// The good records, in order.
    pub records: Vec<Record>,
    /// Bytes (from the start of the records) that hold good records; a
    /// torn tail starts here.
    pub good_len: usize,
    /// Bytes of torn tail after the good records (0 if none); in a
    /// preallocated file, up to its last non-zero byte.
    pub torn_bytes: usize,
    /// Whole records at the start of the torn tail: those of a batch whose
    /// last record is missing (0 if none).
    pub unfinished_batch: usize,
}

/// Reads the records that follow the header of a file of `layout`. A
/// damaged last record is a torn tail (reported, not an error); a damaged
/// record followed by more data is corruption.
pub fn scan_records(data: &[u8], layout: Layout) -> Result<Scan, JournalError> {
    // Where the written bytes end: past it only zeros follow. They are a
    // preallocated file's room; in an appended file, blocks a crash left
    // unwritten (its size was updated, its data was not), or the part of
    // a preallocation that failed for want of space. (The last record
    // itself may end in zero bytes, so this is not where the records end,
    // only where data can no longer follow.)
    let written = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    // Where a torn tail ends: an appended file's zeros are cut with it; a
    // preallocated file keeps its room.
    let tail_end = match layout {
        Layout::Appended => data.len(),
        Layout::Preallocated => written,
    };
    let mut records = Vec::new();
    // Where the batch being read started (its offset and its first
    // record's index), until its last record is read.
    let mut batch: Option<(usize, usize)> = None;
    let mut at = 0;
    while at < written {
        let rest = &data[at..];
        let torn = |records: Vec<Record>| torn_from(records, batch, at, tail_end);
        if rest[..FRAME_LEN.min(rest.len())].iter().all(|&b| b == 0) {
            // The end of the records, yet written bytes follow.
            return Err(JournalError::Corrupt {
                offset: at,
                problem: format!(
                    "the records end here, but {} bytes later hold data",
                    written - at
                ),
            });
        }
        if rest.len() < FRAME_LEN {
            return Ok(torn(records));
        }
        let length = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if length > MAX_PAYLOAD {
            // A length no record has: garbage where a frame should be. At the
            // very end it is a torn write; before good data it is corruption.
            return if written - at <= FRAME_LEN + MAX_PAYLOAD {
                Ok(torn(records))
            } else {
                Err(JournalError::Corrupt {
                    offset: at,
                    problem: format!("record length {length} is impossible"),
                })
            };
        }
        if rest.len() < FRAME_LEN + length {
            return Ok(torn(records));
        }
        let payload = &rest[FRAME_LEN..FRAME_LEN + length];
        let is_last = at + FRAME_LEN + length >= written;
        let decoded = (crc32fast::hash(payload) == crc)
            .then(|| decode_payload(payload))
            .flatten();
        match decoded {
            Some((record, continues)) => {
                if continues && batch.is_none() {
                    batch = Some((at, records.len()));
                } else if !continues {
                    batch = None;
                }
                records.push(record);
            }
            None if is_last => return Ok(torn(records)),
            None => {
                return Err(JournalError::Corrupt {
                    offset: at,
                    problem: if crc32fast::hash(payload) != crc {
                        "checksum mismatch".into()
                    } else {
                        "unreadable command".into()
                    },
                })
            }
        }
        at += FRAME_LEN + length;
    }
    Ok(torn_from(records, batch, at, tail_end))
}

/// The scan's result when the good data ends at `at`: what follows up to
/// `tail_end` is torn, and so is an unfinished `batch` before it.
fn torn_from(
    mut records: Vec<Record>,
    batch: Option<(usize, usize)>,
    at: usize,
    tail_end: usize,
) -> Scan {
    let (good_len, unfinished_batch) = match batch {
        Some((offset, first)) => {
            let unfinished = records.len() - first;
            records.truncate(first);
            (offset, unfinished)
        }
        None => (at, 0),
    };
    Scan {
        records,
        good_len,
        // A preallocated file's last record may end in zeros, past the
        // last byte written.
        torn_bytes: tail_end.saturating_sub(good_len),
        unfinished_batch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        let commands = [
            CommandKind::Place {
                id: 0x1234_5678_9abc_def0_1234_5678_9abc_def0,
                side: Side::Sell,
                price: 10_050,
                quantity: 7,
                tif: TimeInForce::GoodTillCancel,
            },
            CommandKind::Modify {
                id: 42,
                price: None,
                quantity: Some(3),
            },
            CommandKind::Modify {
                id: 43,
                price: Some(99),
                quantity: None,
            },
            CommandKind::Cancel { id: u128::MAX },
        ];
        commands
            .iter()
            .enumerate()
            .map(|(i, &kind)| Record {
                seq: i as u64 + 1,
                command: Command {
                    ts: 1_700_000_000_000_000_000 + i as u64,
                    kind,
                },
                client_id: None,
            })
            .collect()
    }

    fn encoded(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for record in records {
            write_record(&mut out, record);
        }
        out
    }

    /// Asserts that `record` with its last payload byte set to `byte`
    /// (checksum mended), with good records after it, is corruption.
    fn assert_last_byte_is_corruption(record: &Record, byte: u8) {
        let mut data = encoded(std::slice::from_ref(record));
        let last = data.len() - 1;
        data[last] = byte;
        let crc = crc32fast::hash(&data[FRAME_LEN..]);
        data[4..8].copy_from_slice(&crc.to_le_bytes());
        data.extend(encoded(&sample()));
        assert!(matches!(
            scan_records(&data, Layout::Appended),
            Err(JournalError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn records_round_trip() {
        let records = sample();
        let data = encoded(&records);
        let scan = scan_records(&data, Layout::Appended).unwrap();
        assert_eq!(scan.records, records);
        assert_eq!((scan.good_len, scan.torn_bytes), (data.len(), 0));
    }

    #[test]
    fn a_cancel_all_round_trips_with_and_without_a_side() {
        let records: Vec<Record> = [None, Some(Side::Buy), Some(Side::Sell)]
            .into_iter()
            .enumerate()
            .map(|(i, side)| Record {
                seq: i as u64 + 1,
                command: Command {
                    ts: 7,
                    kind: CommandKind::CancelAll { side },
                },
                client_id: None,
            })
            .collect();
        let data = encoded(&records);
        // Frame, seq, ts, kind 5 and one side byte.
        assert_eq!(data.len(), 3 * (FRAME_LEN + 8 + 8 + 2));
        let scan = scan_records(&data, Layout::Appended).unwrap();
        assert_eq!(scan.records, records);
        // A side byte this build does not know is a damaged record.
        assert_last_byte_is_corruption(&records[0], 2);
    }

    #[test]
    fn places_keep_their_time_in_force_and_good_till_cancel_keeps_the_old_layout() {
        let place = |tif| Record {
            seq: 9,
            command: Command {
                ts: 5,
                kind: CommandKind::Place {
                    id: 0xABCD,
                    side: Side::Buy,
                    price: 10_000,
                    quantity: 3,
                    tif,
                },
            },
            client_id: None,
        };
        let frame_and_head = FRAME_LEN + 8 + 8;
        for (tif, kind, len) in [
            (TimeInForce::GoodTillCancel, 1, 50),
            (TimeInForce::ImmediateOrCancel, 4, 51),
            (TimeInForce::FillOrKill, 4, 51),
            (TimeInForce::PostOnly, 4, 51),
        ] {
            let data = encoded(&[place(tif)]);
            assert_eq!((data[frame_and_head], data.len() - FRAME_LEN), (kind, len));
            let scan = scan_records(&data, Layout::Appended).unwrap();
            assert_eq!(scan.records, [place(tif)]);
        }
        // A time in force this build does not know is a damaged record.
        assert_last_byte_is_corruption(&place(TimeInForce::PostOnly), 9);
    }

    #[test]
    fn a_named_place_keeps_its_client_order_id_and_time_in_force() {
        let named = |tif, name: &str| Record {
            client_id: ClientOrderId::parse(name),
            ..Record::new(
                4,
                Command {
                    ts: 5,
                    kind: CommandKind::Place {
                        id: 0xABCD,
                        side: Side::Sell,
                        price: 10_000,
                        quantity: 3,
                        tif,
                    },
                },
            )
        };
        let frame_and_head = FRAME_LEN + 8 + 8;
        for (tif, name) in [
            (TimeInForce::GoodTillCancel, "a"),
            (TimeInForce::FillOrKill, "leg-1/x.y:z_2"),
            (TimeInForce::PostOnly, &"z".repeat(36)),
        ] {
            let record = named(tif, name);
            let mut data = Vec::new();
            write_batch_record(&mut data, &record, true);
            // Kind 6 (batch flag kept), kind 4's fields, the name's
            // length and bytes.
            assert_eq!(data[frame_and_head], 6 | BATCH_CONTINUES);
            assert_eq!(data.len() - FRAME_LEN, 51 + 1 + name.len());
            data.extend(encoded(&[named(tif, "b")]));
            let scan = scan_records(&data, Layout::Appended).unwrap();
            assert_eq!(scan.records, [record, named(tif, "b")]);
        }
        // A name this build would not take is a damaged record.
        assert_last_byte_is_corruption(&named(TimeInForce::GoodTillCancel, "ab"), b' ');
    }

    #[test]
    fn header_round_trips_and_rejects_strangers() {
        let mut out = Vec::new();
        write_header(&mut out, 77, Layout::Appended);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(
            read_header(&out),
            Ok(Header {
                first_seq: 77,
                layout: Layout::Appended
            })
        );
        let mut preallocated = Vec::new();
        write_header(&mut preallocated, 78, Layout::Preallocated);
        assert_eq!(
            read_header(&preallocated),
            Ok(Header {
                first_seq: 78,
                layout: Layout::Preallocated
            })
        );
        let mut wrong_version = out.clone();
        wrong_version[8] = 9;
        assert!(matches!(
            read_header(&wrong_version),
            Err(JournalError::BadHeader(_))
        ));
        assert!(matches!(
            read_header(b"{\"buy_orders\":[]}xxx"),
            Err(JournalError::BadHeader(_))
        ));
        assert!(matches!(
            read_header(&out[..5]),
            Err(JournalError::BadHeader(_))
        ));
    }

    #[test]
    fn a_half_written_last_record_is_a_torn_tail() {
        let records = sample();
        let data = encoded(&records);
        let whole = encoded(&records[..3]).len();
        for cut in whole + 1..data.len() {
            let scan = scan_records(&data[..cut], Layout::Appended).unwrap();
            assert_eq!(scan.records, records[..3], "cut at {cut}");
            assert_eq!((scan.good_len, scan.torn_bytes), (whole, cut - whole));
        }
    }

    #[test]
    fn a_damaged_last_record_is_a_torn_tail() {
        let records = sample();
        let mut data = encoded(&records);
        let last = data.len() - 1;
        data[last] ^= 0xFF;
        let scan = scan_records(&data, Layout::Appended).unwrap();
        assert_eq!(scan.records, records[..3]);
        assert!(scan.torn_bytes > 0);
    }

    #[test]
    fn damage_before_good_records_is_corruption() {
        let records = sample();
        let mut data = encoded(&records);
        data[FRAME_LEN + 3] ^= 0x01; // inside the first payload
        match scan_records(&data, Layout::Appended) {
            Err(JournalError::Corrupt { offset, problem }) => {
                assert_eq!(offset, 0);
                assert_eq!(problem, "checksum mismatch");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // An impossible length with more data after it than one record
        // could hold.
        let mut data = encoded(&records);
        data[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        while data.len() < 2 * (FRAME_LEN + MAX_PAYLOAD) {
            data.extend(encoded(&records));
        }
        assert!(matches!(
            scan_records(&data, Layout::Appended),
            Err(JournalError::Corrupt { offset: 0, .. })
        ));
    }

    /// `data` in a file preallocated to `data.len() + zeros`.
    fn zero_filled(data: &[u8], zeros: usize) -> Vec<u8> {
        let mut file = data.to_vec();
        file.resize(data.len() + zeros, 0);
        file
    }

    #[test]
    fn a_preallocated_file_ends_its_records_at_the_zeros() {
        let records = sample();
        let data = encoded(&records);
        let scan = scan_records(&zero_filled(&data, 4096), Layout::Preallocated).unwrap();
        assert_eq!(scan.records, records);
        assert_eq!((scan.good_len, scan.torn_bytes), (data.len(), 0));
        // Nothing written yet.
        let scan = scan_records(&[0; 4096], Layout::Preallocated).unwrap();
        assert_eq!(
            (scan.records.len(), scan.good_len, scan.torn_bytes),
            (0, 0, 0)
        );
        // A last record whose own bytes end in zeros is still whole.
        let mut last = records[3];
        last.command.kind = CommandKind::Cancel { id: 1 };
        let mut data = encoded(&records[..3]);
        write_record(&mut data, &last);
        assert_eq!(*data.last().unwrap(), 0, "the record ends in a zero byte");
        let scan = scan_records(&zero_filled(&data, 100), Layout::Preallocated).unwrap();
        assert_eq!(scan.records.last(), Some(&last));
        assert_eq!((scan.good_len, scan.torn_bytes), (data.len(), 0));
    }

    #[test]
    fn a_half_written_record_before_the_zeros_is_a_torn_tail() {
        let records = sample();
        let data = encoded(&records);
        let whole = encoded(&records[..3]).len();
        for cut in whole + 1..data.len() {
            let file = zero_filled(&data[..cut], 2 * MAX_PAYLOAD);
            let scan = scan_records(&file, Layout::Preallocated).unwrap();
            assert_eq!(scan.records, records[..3], "cut at {cut}");
            assert_eq!(scan.good_len, whole, "cut at {cut}");
            // Up to the last non-zero byte of what was written.
            let nonzero = data[..cut].iter().rposition(|&b| b != 0).unwrap() + 1;
            assert_eq!(scan.torn_bytes, nonzero - whole, "cut at {cut}");
        }
    }

    #[test]
    fn data_after_the_end_of_a_preallocated_files_records_is_corruption() {
        let records = sample();
        let first = encoded(&records[..1]);
        // Records, a gap of zeros, then more records.
        let mut file = zero_filled(&first, 64);
        file.extend(encoded(&records[1..]));
        file.extend([0; 256]);
        match scan_records(&file, Layout::Preallocated) {
            Err(JournalError::Corrupt { offset, .. }) => assert_eq!(offset, first.len()),
            other => panic!("expected corruption, got {other:?}"),
        }
        // A damaged record with good records (then zeros) after it.
        let mut data = encoded(&records);
        data[FRAME_LEN + 3] ^= 0x01;
        assert!(matches!(
            scan_records(&zero_filled(&data, 512), Layout::Preallocated),
            Err(JournalError::Corrupt { offset: 0, .. })
        ));
    }

    /// One single command, then a batch of the four sample commands, then
    /// another single: the bytes, and where the batch starts and ends.
    fn single_batch_single() -> (Vec<Record>, Vec<u8>, usize, usize) {
        let mut records = sample();
        for record in &mut records {
            record.seq += 1;
        }
        let single = |seq| Record {
            seq,
            command: Command {
                ts: 1,
                kind: CommandKind::Cancel { id: 7 },
            },
            client_id: None,
        };
        records.insert(0, single(1));
        records.push(single(6));
        let mut data = Vec::new();
        write_record(&mut data, &records[0]);
        let batch_start = data.len();
        for (i, record) in records[1..5].iter().enumerate() {
            write_batch_record(&mut data, record, i < 3);
        }
        let batch_end = data.len();
        write_record(&mut data, &records[5]);
        (records, data, batch_start, batch_end)
    }

    #[test]
    fn a_whole_batch_reads_back_as_its_commands() {
        let (records, data, _, batch_end) = single_batch_single();
        for layout in [Layout::Appended, Layout::Preallocated] {
            let file = match layout {
                Layout::Appended => data.clone(),
                Layout::Preallocated => zero_filled(&data, 2 * MAX_PAYLOAD),
            };
            let scan = scan_records(&file, layout).unwrap();
            assert_eq!(scan.records, records);
            assert_eq!((scan.good_len, scan.torn_bytes), (data.len(), 0));
            assert_eq!(scan.unfinished_batch, 0);
        }
        // Ending right after the batch is ending cleanly too.
        let scan = scan_records(&data[..batch_end], Layout::Appended).unwrap();
        assert_eq!(scan.records, records[..5]);
        assert_eq!((scan.good_len, scan.torn_bytes), (batch_end, 0));
    }

    #[test]
    fn a_batch_cut_anywhere_before_its_last_record_is_dropped_whole() {
        let (records, data, batch_start, batch_end) = single_batch_single();
        let ends: Vec<usize> = {
            let mut at = batch_start;
            let mut ends = Vec::new();
            for record in &records[1..5] {
                let mut one = Vec::new();
                write_record(&mut one, record);
                at += one.len();
                ends.push(at);
            }
            ends
        };
        assert_eq!(ends[3], batch_end);
        for cut in batch_start + 1..batch_end {
            for layout in [Layout::Appended, Layout::Preallocated] {
                // Zero-filled, a record whose missing bytes are all zeros
                // is whole.
                let whole_records = ends
                    .iter()
                    .filter(|&&end| {
                        end <= cut
                            || layout == Layout::Preallocated
                                && data[cut..end].iter().all(|&b| b == 0)
                    })
                    .count();
                let file = match layout {
                    Layout::Appended => data[..cut].to_vec(),
                    Layout::Preallocated => zero_filled(&data[..cut], 2 * MAX_PAYLOAD),
                };
                let scan = scan_records(&file, layout).unwrap();
                assert_eq!(scan.records, records[..1], "cut at {cut}, {layout:?}");
                assert_eq!(scan.good_len, batch_start, "cut at {cut}, {layout:?}");
                let written = data[..cut].iter().rposition(|&b| b != 0).unwrap() + 1;
                let written = if layout == Layout::Appended {
                    cut
                } else {
                    written
                };
                assert_eq!(scan.torn_bytes, written - batch_start, "cut at {cut}");
                assert_eq!(scan.unfinished_batch, whole_records, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_batch_flag_is_under_the_checksum() {
        let (_, mut data, batch_start, _) = single_batch_single();
        // Clear the first batch record's flag and leave its checksum: the
        // record is damaged, and with good records after it, corruption.
        data[batch_start + FRAME_LEN + 16] &= !BATCH_CONTINUES;
        assert!(matches!(
            scan_records(&data, Layout::Appended),
            Err(JournalError::Corrupt { offset, .. }) if offset == batch_start
        ));
    }
}
