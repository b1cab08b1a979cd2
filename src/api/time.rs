//! Time on the wire: RFC 3339 timestamps, read and written, and the
//! stamps commands carry (the wall clock, never running backwards).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::Timestamp;

/// Parses an RFC 3339 / ISO 8601 timestamp such as
/// `2026-11-25T08:00:00.123456Z` (as written by [`write_timestamp`]),
/// `2026-11-25T09:00:00+01:00` (an offset, RFC 3339 §5.6; `t` and `z` in
/// lower case too) or `2024-05-01T12:00:00.5` (Python's `isoformat()`,
/// no offset, taken as UTC), to nanoseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let (text, east) = split_offset(text)?;
    let utc = parse_utc(text)?;
    let east_nanos = east.unsigned_abs() * 1_000_000_000;
    match east >= 0 {
        true => utc.checked_sub(east_nanos),
        false => utc.checked_add(east_nanos),
    }
}

/// As [`parse_timestamp`], but only with an offset (`Z` or `±hh:mm`):
/// what a client writes without one is its own wall clock, which the
/// server cannot know (it would be read as UTC, hours off).
pub fn parse_timestamp_with_offset(text: &str) -> Option<Timestamp> {
    let (local, _) = split_offset(text)?;
    if local.len() == text.len() {
        return None;
    }
    parse_timestamp(text)
}

/// A timestamp's text without its offset, and the offset in seconds east
/// of UTC (0 for `Z`, `+00:00`, `-00:00` or none); `None` for a malformed
/// offset.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(utc) = text.strip_suffix(['Z', 'z']) {
        return Some((utc, 0));
    }
    let Some(at) = text.len().checked_sub(6) else {
        return Some((text, 0));
    };
    let sign = match text.as_bytes()[at] {
        b'+' => 1,
        b'-' => -1,
        _ => return Some((text, 0)),
    };
    let (hours, minutes) = text[at + 1..].split_once(':')?;
    let digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || !digits(minutes) {
        return None;
    }
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((&text[..at], sign * (hours * 3_600 + minutes * 60)))
}

/// Days in `month` (1 to 12) of the Gregorian `year`: a date past them
/// (`2026-11-31`, `2026-02-29`) is no date, not the next month's first.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A timestamp without an offset, read as UTC.
fn parse_utc(text: &str) -> Option<Timestamp> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.splitn(3, ':');
    let hour: u64 = clock_parts.next()?.parse().ok()?;
    let minute: u64 = clock_parts.next()?.parse().ok()?;
    let second: u64 = clock_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || fraction.len() > 9
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let nanos: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3_600 + minute * 60 + second;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The wall clock in whole microseconds since the epoch: the resolution of
/// every stamp the service makes and shows.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Stamps for commands: the wall clock in whole microseconds (as ns), but
/// never below the last stamp, so that order and trade times never run
/// backwards when the clock is stepped back (NTP, a VM resumed).
#[derive(Clone, Copy, Debug)]
pub struct Stamps {
    last: Timestamp,
}

impl Stamps {
    /// Stamps from now on, none before `last` (the newest time already
    /// shown, say the last trade's).
    pub fn after(last: Timestamp) -> Self {
        Stamps { last }
    }

    /// The next stamp.
    pub fn stamp(&mut self) -> Timestamp {
        self.stamp_at(now_micros() * 1_000)
    }

    /// The next stamp when the clock reads `now`.
    pub fn stamp_at(&mut self, now: Timestamp) -> Timestamp {
        self.last = self.last.max(now);
        self.last
    }
}

/// The (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Writes a timestamp as RFC 3339 UTC with microseconds.
pub fn write_timestamp(out: &mut String, ts: Timestamp) {
    let micros = ts / 1_000;
    let seconds = micros / 1_000_000;
    let days = (seconds / 86_400) as i64;
    let in_day = seconds % 86_400;
    let (year, month, day) = civil_date(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        in_day / 3_600,
        in_day / 60 % 60,
        in_day % 60,
        micros % 1_000_000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(ts: Timestamp) -> String {
        let mut out = String::new();
        write_timestamp(&mut out, ts);
        out
    }

    #[test]
    fn an_offset_is_taken_out_and_lower_case_letters_are_read() {
        let utc = parse_timestamp("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(written(utc), "2026-12-01T00:00:00.000000Z");
        for same in [
            "2026-12-01t00:00:00z",
            "2026-12-01T00:00:00+00:00",
            "2026-12-01T00:00:00-00:00",
            "2026-12-01T00:00:00",
            "2026-12-01 00:00:00",
            "2026-12-01T01:00:00+01:00",
            "2026-11-30T19:30:00-04:30",
            "2026-12-01T05:45:00.000+05:45",
        ] {
            assert_eq!(parse_timestamp(same), Some(utc), "{same}");
        }
        // Each month's last day, leap days of leap years included.
        for last in [
            "2026-01-31T00:00:00Z",
            "2026-02-28T00:00:00Z",
            "2028-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2026-04-30T00:00:00Z",
            "2026-12-31T23:59:59Z",
        ] {
            let read = parse_timestamp(last).unwrap_or_else(|| panic!("{last}"));
            assert_eq!(written(read).replace(".000000", ""), last);
        }
        let fraction = parse_timestamp("2026-12-01T02:00:00.123456+02:00").unwrap();
        assert_eq!(written(fraction), "2026-12-01T00:00:00.123456Z");
        for bad in [
            "2026-12-01T00:00:00+1:00",
            "2026-12-01T00:00:00+01:60",
            "2026-12-01T00:00:00+24:00",
            "2026-12-01T00:00:00+0100",
            "2026-12-01T00:00:00ZZ",
            "1970-01-01T00:00:00+00:01",
            "2026-12-01",
            "2026-11-31T13:00:00Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
