//! The tick size the data directory's journal was written with, in the
//! file `tick_size` beside it. The journal keeps prices in ticks, so
//! replaying it under another `--tick-size` would move every price (a bid
//! at 12345.65 on a tick of 0.05 came back at 2469.13 on 0.01): a start
//! whose tick differs is refused instead, naming the tick to start with.

use std::fs;
use std::io;
use std::path::Path;

use super::{segments, snapshot};
use crate::api::TickSize;

/// The file's name, in the data directory.
pub const TICK_FILE: &str = "tick_size";

/// The tick size recorded in `dir`, if any.
pub fn recorded(dir: &Path) -> Result<Option<TickSize>, String> {
    let path = dir.join(TICK_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => TickSize::parse(&text)
            .map(Some)
            .map_err(|why| format!("{} is unusable: {why}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Checks that `tick` is the tick `dir`'s journal was written with, if
/// one is recorded; before recovery, so a refused start changes nothing.
pub fn check(dir: &Path, tick: TickSize) -> Result<(), String> {
    match recorded(dir)? {
        Some(written) if written != tick => {
            let subject = format!("the journal in {}", dir.display());
            Err(differs(&subject, written, tick))
        }
        _ => Ok(()),
    }
}

/// Records `tick` in `dir` unless a tick is recorded there; once the
/// state is recovered. Returns a note for the operator when it recorded
/// one for a journal already there (written before ticks were recorded:
/// its tick is taken to be this one, which recovered it).
pub fn record(dir: &Path, tick: TickSize) -> Result<Option<String>, String> {
    if recorded(dir)?.is_some() {
        return Ok(None);
    }
    let journal = segments::list(dir)
        .map_err(|e| format!("cannot list the journal in {}: {e}", dir.display()))?;
    let path = dir.join(TICK_FILE);
    snapshot::save_atomically(&path, format!("{tick}\n").as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((!journal.is_empty()).then(|| {
        format!(
            "recorded --tick-size {tick} in {} for the journal there, which had no record of its tick",
            path.display()
        )
    }))
}

/// Why a start with `tick` cannot read `subject`, written with `written`.
pub fn differs(subject: &str, written: TickSize, tick: TickSize) -> String {
    format!(
        "{subject} was written with --tick-size {written}, and this start has --tick-size {tick}: \
         its prices are counted in ticks of {written}; start with --tick-size {written}, \
         or use another --data-dir for another tick"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(text: &str) -> TickSize {
        TickSize::parse(text).unwrap()
    }

    #[test]
    fn the_first_start_records_its_tick_and_a_later_one_must_match_it() {
        let dir = std::env::temp_dir().join(format!("tick-record-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(recorded(&dir), Ok(None));
        assert_eq!(check(&dir, tick("0.05")), Ok(()), "nothing recorded yet");
        assert_eq!(record(&dir, tick("0.05")), Ok(None));
        assert_eq!(fs::read_to_string(dir.join(TICK_FILE)).unwrap(), "0.05\n");
        assert_eq!(recorded(&dir), Ok(Some(tick("0.050"))));
        // The same tick written otherwise is the same tick.
        assert_eq!(check(&dir, tick("0.050")), Ok(()));
        let refused = check(&dir, tick("0.01")).unwrap_err();
        assert!(
            refused
                .contains("was written with --tick-size 0.05, and this start has --tick-size 0.01"),
            "{refused}"
        );
        // Recording again keeps the first.
        assert_eq!(record(&dir, tick("0.01")), Ok(None));
        assert_eq!(recorded(&dir), Ok(Some(tick("0.05"))));
        // A journal from before the record: this start's tick is recorded,
        // and said.
        fs::remove_file(dir.join(TICK_FILE)).unwrap();
        fs::write(dir.join(segments::segment_name(1)), b"").unwrap();
        let note = record(&dir, tick("1")).unwrap().expect("a note");
        assert!(note.starts_with("recorded --tick-size 1 in "), "{note}");
        assert_eq!(fs::read_to_string(dir.join(TICK_FILE)).unwrap(), "1\n");
        fs::write(dir.join(TICK_FILE), "0.0.1\n").unwrap();
        assert!(recorded(&dir).unwrap_err().contains("is unusable"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
