//! Properties of reading a journal back, over generated journals of single
//! commands and batches, in both file layouts:
//!
//! - cut anywhere (a crash in mid-write), it reads back as exactly the
//!   commands of the whole batches before the cut, with the rest reported
//!   as torn;
//! - with any one byte changed (damage), it reads back as a refusal, or
//!   as a prefix of whole batches of what was written (a damaged last
//!   record is a torn tail): never as a command that was not written;
//! - any bytes at all are read without a panic.

use orderbook::engine::{Command, CommandKind, Side, TimeInForce};
use orderbook::persist::journal::{scan_records, write_batch_record, Layout, Record, Scan};
use proptest::prelude::*;

/// A journal's records, grouped into what was written at once: a single
/// command is a batch of one.
type Batches = Vec<Vec<Record>>;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn kind() -> impl Strategy<Value = CommandKind> {
    let tif = prop_oneof![
        Just(TimeInForce::GoodTillCancel),
        Just(TimeInForce::ImmediateOrCancel),
        Just(TimeInForce::FillOrKill),
        Just(TimeInForce::PostOnly),
    ];
    prop_oneof![
        (any::<u128>(), side(), 1u64..1 << 52, 1u64..1 << 40, tif).prop_map(
            |(id, side, price, quantity, tif)| CommandKind::Place {
                id,
                side,
                price,
                quantity,
                tif,
            }
        ),
        (
            any::<u128>(),
            prop::option::of(1u64..1 << 52),
            prop::option::of(1u64..1 << 40)
        )
            .prop_map(|(id, price, quantity)| CommandKind::Modify {
                id,
                price,
                quantity
            }),
        any::<u128>().prop_map(|id| CommandKind::Cancel { id }),
        prop::option::of(side()).prop_map(|side| CommandKind::CancelAll { side }),
    ]
}

/// Batches of 1 to 6 commands, numbered 1, 2, 3, ...
fn batches() -> impl Strategy<Value = Batches> {
    prop::collection::vec(prop::collection::vec((any::<u64>(), kind()), 1..6), 1..12).prop_map(
        |groups| {
            let mut seq = 0;
            groups
                .into_iter()
                .map(|group| {
                    group
                        .into_iter()
                        .map(|(ts, kind)| {
                            seq += 1;
                            Record::new(seq, Command { ts, kind })
                        })
                        .collect()
                })
                .collect()
        },
    )
}

/// The records' bytes, and the offset where each batch ends.
fn encode(batches: &Batches) -> (Vec<u8>, Vec<usize>) {
    let mut data = Vec::new();
    let mut ends = Vec::new();
    for batch in batches {
        for (i, record) in batch.iter().enumerate() {
            write_batch_record(&mut data, record, i + 1 < batch.len());
        }
        ends.push(data.len());
    }
    (data, ends)
}

/// The file a layout makes of `data`: as written, or zero-filled past it.
fn file(data: &[u8], layout: Layout) -> Vec<u8> {
    let mut file = data.to_vec();
    if layout == Layout::Preallocated {
        file.resize(data.len() + 4096, 0);
    }
    file
}

/// The records of the first `n` batches.
fn first_batches(batches: &Batches, n: usize) -> Vec<Record> {
    batches[..n].iter().flatten().copied().collect()
}

/// The scan reads back as the whole batches before some point: exactly
/// the records of the first `n` batches, with `good_len` at their end.
fn whole_batches_read(scan: &Scan, batches: &Batches, ends: &[usize]) -> Option<usize> {
    let n = (0..=batches.len()).find(|&n| scan.records.len() == first_batches(batches, n).len())?;
    let good_len = if n == 0 { 0 } else { ends[n - 1] };
    (scan.records == first_batches(batches, n) && scan.good_len == good_len).then_some(n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Cut anywhere: the whole batches before the cut, the rest torn.
    #[test]
    fn a_journal_cut_anywhere_reads_back_as_its_whole_batches_before_the_cut(
        batches in batches(),
        cut in any::<prop::sample::Index>(),
        preallocated in any::<bool>(),
    ) {
        let layout = if preallocated { Layout::Preallocated } else { Layout::Appended };
        let (data, ends) = encode(&batches);
        let cut = cut.index(data.len() + 1);
        let scan = scan_records(&file(&data[..cut], layout), layout).unwrap();
        let n = whole_batches_read(&scan, &batches, &ends);
        prop_assert!(n.is_some(), "cut at {}: {:?}", cut, scan);
        let n = n.unwrap();
        // Every batch that ends by the cut is read. In a zero-filled file
        // a batch whose cut-off bytes were zeros is whole as well.
        let ended = ends.iter().filter(|&&end| end <= cut).count();
        prop_assert!(n == ended || layout == Layout::Preallocated && n == ended + 1);
        if layout == Layout::Appended {
            prop_assert_eq!(scan.good_len + scan.torn_bytes, cut);
        }
    }

    /// One byte changed anywhere: refused, or a prefix of whole batches
    /// (the damaged record was the last, a torn tail); never a command that
    /// was not written.
    #[test]
    fn a_journal_with_a_byte_changed_never_reads_back_a_command_not_written(
        batches in batches(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        preallocated in any::<bool>(),
    ) {
        let layout = if preallocated { Layout::Preallocated } else { Layout::Appended };
        let (mut data, ends) = encode(&batches);
        let at = at.index(data.len());
        data[at] ^= flip;
        match scan_records(&file(&data, layout), layout) {
            Err(_) => {}
            Ok(scan) => {
                let n = whole_batches_read(&scan, &batches, &ends);
                prop_assert!(n.is_some(), "byte {} ^ {:#x}: {:?}", at, flip, scan);
                // Only what follows the changed byte can be missing.
                let n = n.unwrap();
                prop_assert!(n == batches.len() || ends[n] > at);
            }
        }
    }

    /// Any bytes: read without a panic; what is read lies within them.
    #[test]
    fn any_bytes_are_read_without_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        preallocated in any::<bool>(),
    ) {
        let layout = if preallocated { Layout::Preallocated } else { Layout::Appended };
        if let Ok(scan) = scan_records(&bytes, layout) {
            prop_assert!(scan.good_len + scan.torn_bytes <= bytes.len());
        }
    }
}
