//! `GET /metrics`: counters, gauges, and latency summaries and histograms
//! in the Prometheus text format. Each thread records into what it owns; what another thread
//! records (the publisher's latencies, the replica's snapshots) is shared
//! through [`Shared`], merged in once per batch, never per command.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

use crate::engine::{Event, OrderStatus};

/// A latency histogram in microseconds, 1 µs to 100 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// Figures recorded off the I/O thread.
pub struct Shared {
    /// From the front's stamp on a command to the publisher reading its
    /// outcome: the command ring, matching, and the output ring, in µs.
    pub matching_latency: Mutex<Histogram<u64>>,
    /// Time of each journal write, in µs.
    pub journal_write: Mutex<Histogram<u64>>,
    /// Time of each `fdatasync` of the journal under `--fsync`, in µs.
    pub journal_sync: Mutex<Histogram<u64>>,
    /// `fdatasync`s of the journal under `--fsync`.
    pub journal_syncs: AtomicU64,
    /// Journal records written.
    pub journal_records: AtomicU64,
    /// Journal writes (group commits).
    pub journal_batches: AtomicU64,
    /// Journal bytes written.
    pub journal_bytes: AtomicU64,
    /// State files written.
    pub snapshots: AtomicU64,
    /// Duration of the last state file written, in ms.
    pub last_snapshot_ms: AtomicU64,
    /// Size of the last state file written, in bytes.
    pub last_snapshot_bytes: AtomicU64,
    /// Journal files in the data directory, as last counted (at start and
    /// at each state file written).
    pub journal_files_on_disk: AtomicU64,
    /// Their total size in bytes.
    pub journal_bytes_on_disk: AtomicU64,
    /// Orders resting in the book, as of the replica's last batch.
    pub resting_orders: AtomicU64,
    /// Orders the service keeps (resting or finished) that have a
    /// `client_order_id`, as of the replica's last batch.
    pub named_orders: AtomicU64,
    /// Trades kept for `GET /trades`, as of the replica's last batch.
    pub trades_kept: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            matching_latency: Mutex::new(latency_histogram()),
            journal_write: Mutex::new(latency_histogram()),
            journal_sync: Mutex::new(latency_histogram()),
            journal_syncs: AtomicU64::new(0),
            journal_records: AtomicU64::new(0),
            journal_batches: AtomicU64::new(0),
            journal_bytes: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            last_snapshot_ms: AtomicU64::new(0),
            last_snapshot_bytes: AtomicU64::new(0),
            journal_files_on_disk: AtomicU64::new(0),
            journal_bytes_on_disk: AtomicU64::new(0),
            resting_orders: AtomicU64::new(0),
            named_orders: AtomicU64::new(0),
            trades_kept: AtomicU64::new(0),
        }
    }
}

/// What the market did since the start: trades, units traded, and the
/// orders placed by where matching left them. Counted by the front from
/// the matching thread's events as it reads them.
#[derive(Debug, Default)]
pub struct Activity {
    trades: u64,
    traded_quantity: u64,
    /// Accepted places by their status after matching, in
    /// [`PLACED_STATUSES`]'s order.
    placed: [u64; 4],
}

/// The statuses a place may leave its order in, as the wire spells them.
const PLACED_STATUSES: [OrderStatus; 4] = [
    OrderStatus::Open,
    OrderStatus::PartiallyFilled,
    OrderStatus::Filled,
    OrderStatus::Cancelled,
];

impl Activity {
    /// Counts one event of the matching thread's output.
    #[inline]
    pub fn count(&mut self, event: &Event) {
        match event {
            Event::Trade(trade) => {
                self.trades += 1;
                self.traded_quantity += trade.quantity;
            }
            Event::Accepted(order) => {
                if let Some(at) = PLACED_STATUSES.iter().position(|s| *s == order.status) {
                    self.placed[at] += 1;
                }
            }
            _ => {}
        }
    }

    /// Appends the counters.
    pub fn write(&self, out: &mut String) {
        write_value(
            out,
            "orderbook_trades_total",
            "counter",
            "Trades executed since the start.",
            self.trades,
        );
        write_value(
            out,
            "orderbook_traded_quantity_total",
            "counter",
            "Units traded since the start (each trade's quantity once).",
            self.traded_quantity,
        );
        let name = "orderbook_placed_orders_total";
        let _ = writeln!(
            out,
            "# HELP {name} Orders placed since the start, by their status once matched: open and partially filled ones rest; cancelled ones were IOC, FOK or market orders whose rest was cancelled."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for (status, count) in PLACED_STATUSES.iter().zip(self.placed) {
            let _ = writeln!(out, "{name}{{status=\"{}\"}} {count}", status.as_str());
        }
    }
}

/// Writes one Prometheus summary (quantiles in seconds) of a µs histogram.
pub fn write_summary(out: &mut String, name: &str, help: &str, histogram: &Histogram<u64>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} summary");
    for quantile in [0.5, 0.9, 0.99, 0.999, 1.0] {
        let micros = if histogram.is_empty() {
            0
        } else {
            histogram.value_at_quantile(quantile)
        };
        let _ = writeln!(
            out,
            "{name}{{quantile=\"{quantile}\"}} {}",
            micros as f64 / 1e6
        );
    }
    write_sum_and_count(out, name, "", histogram);
}

/// The `le` bounds of the latency histograms, in µs: 10 µs to 10 s, about
/// three a decade (+Inf follows).
const BUCKETS_MICROS: [u64; 19] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Writes one Prometheus histogram (cumulative `le` buckets in seconds) of
/// a µs histogram: unlike a summary's quantiles, buckets add up across
/// instances and over time (`histogram_quantile`, heatmaps). A recorded
/// value counts under a bound when its HDR bucket lies wholly at or below
/// it; values under 2,048 µs are recorded exactly.
pub fn write_histogram(out: &mut String, name: &str, help: &str, histogram: &Histogram<u64>) {
    write_histograms(out, name, help, &[("", histogram)]);
}

/// Writes one Prometheus histogram family: a series for each
/// `(labels, histogram)`, `labels` as `command="place"` (or empty).
pub fn write_histograms<L: AsRef<str>>(
    out: &mut String,
    name: &str,
    help: &str,
    series: &[(L, &Histogram<u64>)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (labels, histogram) in series {
        let labels = labels.as_ref();
        let before_le = if labels.is_empty() {
            String::new()
        } else {
            format!("{labels},")
        };
        let mut recorded = histogram.iter_recorded().peekable();
        let mut cumulative = 0;
        for bound in BUCKETS_MICROS {
            while let Some(step) = recorded.next_if(|step| step.value_iterated_to() <= bound) {
                cumulative += step.count_at_value();
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{before_le}le=\"{}\"}} {cumulative}",
                bound as f64 / 1e6
            );
        }
        let total = histogram.len();
        let _ = writeln!(out, "{name}_bucket{{{before_le}le=\"+Inf\"}} {total}");
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        write_sum_and_count(out, name, &braced, histogram);
    }
}

/// The `_sum` (seconds) and `_count` lines, with `labels` (`{...}` or
/// nothing), that end a summary and a histogram alike.
fn write_sum_and_count(out: &mut String, name: &str, labels: &str, histogram: &Histogram<u64>) {
    let sum = histogram.mean() * histogram.len() as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{labels} {sum}");
    let _ = writeln!(out, "{name}_count{labels} {}", histogram.len());
}

/// Writes one counter or gauge.
pub fn write_value(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

impl Shared {
    /// Appends this struct's figures.
    pub fn write(&self, out: &mut String) {
        if let Ok(histogram) = self.matching_latency.lock() {
            write_summary(
                out,
                "orderbook_matching_latency_seconds",
                "From a command's stamp at the front to its outcome leaving the matching thread (read by the publisher).",
                &histogram,
            );
            write_histogram(
                out,
                "orderbook_matching_latency_histogram_seconds",
                "orderbook_matching_latency_seconds as histogram buckets.",
                &histogram,
            );
        }
        if let Ok(histogram) = self.journal_write.lock() {
            write_summary(
                out,
                "orderbook_journal_write_seconds",
                "Time of one journal write, shared by a batch of commands.",
                &histogram,
            );
        }
        if let Ok(histogram) = self.journal_sync.lock() {
            write_summary(
                out,
                "orderbook_journal_sync_seconds",
                "Time of one fdatasync of the journal under --fsync, shared by every record written before it began.",
                &histogram,
            );
        }
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        write_value(
            out,
            "orderbook_resting_orders",
            "gauge",
            "Orders resting in the book.",
            load(&self.resting_orders),
        );
        write_value(
            out,
            "orderbook_named_orders",
            "gauge",
            "Orders kept (resting, or finished and fetchable) that have a client_order_id: each holds its name until the order leaves the kept history.",
            load(&self.named_orders),
        );
        write_value(
            out,
            "orderbook_trades_kept",
            "gauge",
            "Trades kept for GET /trades.",
            load(&self.trades_kept),
        );
        write_value(
            out,
            "orderbook_journal_records_total",
            "counter",
            "Journal records written.",
            load(&self.journal_records),
        );
        write_value(
            out,
            "orderbook_journal_batches_total",
            "counter",
            "Journal writes (group commits).",
            load(&self.journal_batches),
        );
        write_value(
            out,
            "orderbook_journal_syncs_total",
            "counter",
            "fdatasync calls on the journal (--fsync only).",
            load(&self.journal_syncs),
        );
        write_value(
            out,
            "orderbook_journal_bytes_total",
            "counter",
            "Journal bytes written.",
            load(&self.journal_bytes),
        );
        write_value(
            out,
            "orderbook_snapshots_total",
            "counter",
            "State files written.",
            load(&self.snapshots),
        );
        write_value(
            out,
            "orderbook_last_snapshot_milliseconds",
            "gauge",
            "Time to build and write the last state file.",
            load(&self.last_snapshot_ms),
        );
        write_value(
            out,
            "orderbook_last_snapshot_bytes",
            "gauge",
            "Size of the last state file.",
            load(&self.last_snapshot_bytes),
        );
        write_value(
            out,
            "orderbook_journal_files",
            "gauge",
            "Journal files in the data directory (counted at start and at each state file).",
            load(&self.journal_files_on_disk),
        );
        write_value(
            out,
            "orderbook_journal_disk_bytes",
            "gauge",
            "Their size: the journal keeps every command unless --prune-journal.",
            load(&self.journal_bytes_on_disk),
        );
    }

    /// Counts the journal files in `dir` and their bytes for the gauges;
    /// a directory that cannot be read leaves them as they were.
    pub fn count_journal(&self, dir: &std::path::Path) {
        if let Ok((files, bytes)) = crate::persist::segments::disk_usage(dir) {
            self.journal_files_on_disk.store(files, Ordering::Relaxed);
            self.journal_bytes_on_disk.store(bytes, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_under_every_bound_at_or_above_it() {
        let mut histogram = latency_histogram();
        for micros in [5, 10, 11, 30, 1_000, 2_000_000, 20_000_000] {
            histogram.record(micros).unwrap();
        }
        let mut out = String::new();
        write_histogram(&mut out, "x_seconds", "Help.", &histogram);
        let buckets: Vec<(&str, u64)> = out
            .lines()
            .filter_map(|line| line.strip_prefix("x_seconds_bucket{le=\""))
            .map(|rest| {
                let (bound, count) = rest.split_once("\"} ").unwrap();
                (bound, count.parse().unwrap())
            })
            .collect();
        assert_eq!(
            buckets,
            [
                ("0.00001", 2),
                ("0.000025", 3),
                ("0.00005", 4),
                ("0.0001", 4),
                ("0.00025", 4),
                ("0.0005", 4),
                ("0.001", 5),
                ("0.0025", 5),
                ("0.005", 5),
                ("0.01", 5),
                ("0.025", 5),
                ("0.05", 5),
                ("0.1", 5),
                ("0.25", 5),
                ("0.5", 5),
                ("1", 5),
                ("2.5", 6),
                ("5", 6),
                ("10", 6),
                ("+Inf", 7),
            ]
        );
        assert!(out.starts_with("# HELP x_seconds Help.\n# TYPE x_seconds histogram\n"));
        assert!(out.ends_with("x_seconds_count 7\n"), "{out}");
    }
}
