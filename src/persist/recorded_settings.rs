//! The settings the data directory's journal was written with, each in a
//! file of its own beside it: `tick_size` and `symbol`. The journal keeps
//! prices in ticks, so replaying it under another `--tick-size` would move
//! every price (a bid at 12345.65 on a tick of 0.05 came back at 2469.13
//! on 0.01); and its orders are for one instrument, so replaying it under
//! another `--symbol` would trade them as another's (a service pointed at
//! the wrong `--data-dir`). A start whose setting differs is refused,
//! naming the setting to start with.

use std::fmt::Display;
use std::fs;
use std::io;
use std::path::Path;

use super::{segments, snapshot};
use crate::api::{Symbol, TickSize};

/// A setting the journal hangs on.
pub trait Recorded: Sized + PartialEq + Display {
    /// The file's name, in the data directory.
    const FILE: &'static str;
    /// The flag that sets it.
    const FLAG: &'static str;
    /// What of the journal hangs on it, said before its value.
    const HOLDS: &'static str;
    /// What it is, in a word.
    const NOUN: &'static str;
    /// Reads the file's text (the value and a newline).
    fn read(text: &str) -> Result<Self, String>;
}

impl Recorded for TickSize {
    const FILE: &'static str = "tick_size";
    const FLAG: &'static str = "--tick-size";
    const HOLDS: &'static str = "prices are counted in ticks of";
    const NOUN: &'static str = "tick";
    fn read(text: &str) -> Result<Self, String> {
        TickSize::parse(text)
    }
}

impl Recorded for Symbol {
    const FILE: &'static str = "symbol";
    const FLAG: &'static str = "--symbol";
    const HOLDS: &'static str = "orders are for";
    const NOUN: &'static str = "symbol";
    fn read(text: &str) -> Result<Self, String> {
        Symbol::parse(text.trim_end_matches('\n'))
    }
}

/// The setting recorded in `dir`, if any.
pub fn recorded<T: Recorded>(dir: &Path) -> Result<Option<T>, String> {
    let path = dir.join(T::FILE);
    match fs::read_to_string(&path) {
        Ok(text) => T::read(&text)
            .map(Some)
            .map_err(|why| format!("{} is unusable: {why}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Checks that `value` is the setting `dir`'s journal was written with;
/// before recovery, so a refused start changes nothing. A journal with no
/// record is refused: what it was written with cannot be known (a tick
/// taken on trust re-priced every order of a probe's book five times over,
/// and was then recorded as the journal's), so the operator writes the
/// record back.
pub fn check<T: Recorded>(dir: &Path, value: &T) -> Result<(), String> {
    let path = dir.join(T::FILE);
    match recorded::<T>(dir)? {
        Some(written) if written != *value => {
            let subject = format!("the journal in {}", dir.display());
            Err(differs(&subject, &written, value))
        }
        Some(_) => Ok(()),
        None if journal_in(dir)? => {
            let (flag, noun) = (T::FLAG, T::NOUN);
            Err(format!(
                "the journal in {} has no record of its {noun} ({} is missing), and read \
                 under another {noun} it would be misread: write the {flag} it was written \
                 with into that file (as `echo VALUE > {}`) and start again",
                dir.display(),
                path.display(),
                path.display()
            ))
        }
        None => Ok(()),
    }
}

/// Records `value` in `dir` unless a value is recorded there; once the
/// state is recovered, before the first journal file is made.
pub fn record<T: Recorded>(dir: &Path, value: &T) -> Result<(), String> {
    if recorded::<T>(dir)?.is_some() {
        return Ok(());
    }
    let path = dir.join(T::FILE);
    snapshot::save_atomically(&path, format!("{value}\n").as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Whether `dir` holds journal files.
fn journal_in(dir: &Path) -> Result<bool, String> {
    let files = segments::list(dir)
        .map_err(|e| format!("cannot list the journal in {}: {e}", dir.display()))?;
    Ok(!files.is_empty())
}

/// Why a start with `value` cannot read `subject`, written with `written`.
pub fn differs<T: Recorded>(subject: &str, written: &T, value: &T) -> String {
    let (flag, holds, noun) = (T::FLAG, T::HOLDS, T::NOUN);
    format!(
        "{subject} was written with {flag} {written}, and this start has {flag} {value}: \
         its {holds} {written}; start with {flag} {written}, \
         or use another --data-dir for another {noun}"
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
        assert_eq!(recorded::<TickSize>(&dir), Ok(None));
        assert_eq!(check(&dir, &tick("0.05")), Ok(()), "nothing recorded yet");
        assert_eq!(record(&dir, &tick("0.05")), Ok(()));
        assert_eq!(
            fs::read_to_string(dir.join(TickSize::FILE)).unwrap(),
            "0.05\n"
        );
        assert_eq!(recorded::<TickSize>(&dir), Ok(Some(tick("0.050"))));
        // The same tick written otherwise is the same tick.
        assert_eq!(check(&dir, &tick("0.050")), Ok(()));
        let refused = check(&dir, &tick("0.01")).unwrap_err();
        assert!(
            refused
                .contains("was written with --tick-size 0.05, and this start has --tick-size 0.01"),
            "{refused}"
        );
        // Recording again keeps the first.
        assert_eq!(record(&dir, &tick("0.01")), Ok(()));
        assert_eq!(recorded::<TickSize>(&dir), Ok(Some(tick("0.05"))));
        // A journal whose record is gone: refused until the operator
        // writes it back.
        fs::remove_file(dir.join(TickSize::FILE)).unwrap();
        fs::write(dir.join(segments::segment_name(1)), b"").unwrap();
        let refused = check(&dir, &tick("0.05")).unwrap_err();
        let path = dir.join(TickSize::FILE);
        assert_eq!(
            refused,
            format!(
                "the journal in {} has no record of its tick ({} is missing), and read under \
                 another tick it would be misread: write the --tick-size it was written with \
                 into that file (as `echo VALUE > {}`) and start again",
                dir.display(),
                path.display(),
                path.display()
            )
        );
        assert_eq!(recorded::<TickSize>(&dir), Ok(None));
        fs::write(&path, "0.05\n").unwrap();
        assert_eq!(check(&dir, &tick("0.05")), Ok(()));
        fs::write(&path, "0.0.1\n").unwrap();
        assert!(recorded::<TickSize>(&dir)
            .unwrap_err()
            .contains("is unusable"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symbol_is_recorded_beside_the_tick_and_a_start_with_another_is_refused() {
        let dir = std::env::temp_dir().join(format!("symbol-record-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let symbol = |text| Symbol::parse(text).unwrap();
        assert_eq!(
            check(&dir, &symbol("ETH-USD")),
            Ok(()),
            "nothing recorded yet"
        );
        assert_eq!(record(&dir, &symbol("ETH-USD")), Ok(()));
        assert_eq!(fs::read_to_string(dir.join("symbol")).unwrap(), "ETH-USD\n");
        assert_eq!(check(&dir, &symbol("ETH-USD")), Ok(()));
        let refused = check(&dir, &symbol("BTC-USD")).unwrap_err();
        let expected = format!(
            "the journal in {} was written with --symbol ETH-USD, and this start has --symbol BTC-USD: \
             its orders are for ETH-USD; start with --symbol ETH-USD, or use another --data-dir for another symbol",
            dir.display()
        );
        assert_eq!(refused, expected);
        // The tick is a file of its own.
        assert_eq!(recorded::<TickSize>(&dir), Ok(None));
        fs::remove_dir_all(&dir).unwrap();
    }
}
