//! A latency histogram as HdrHistogram's percentile distribution text: the
//! `.hgrm` layout that Java's `outputPercentileDistribution`, wrk2's
//! `--latency` and HdrHistogram's online plotter share, so a run's whole
//! distribution can be plotted and laid over other tools' runs, not only
//! the handful of percentiles the report prints.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Percentile steps per halving of the distance to 100%, as those tools
/// print by default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `histogram` (values in microseconds) as a percentile
/// distribution in milliseconds.
pub fn percentile_distribution(histogram: &Histogram<u64>) -> String {
    const MICROS_PER_MILLI: f64 = 1_000.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / MICROS_PER_MILLI;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {quantile:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - quantile)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {quantile:2.12} {total:10}");
        }
    }
    // The sub-bucket count the histogram's precision implies: the smallest
    // power of two at or above 2 * 10^sigfig.
    let sub_buckets = (2 * 10u64.pow(u32::from(histogram.sigfig()))).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        histogram.mean() / MICROS_PER_MILLI,
        histogram.stdev() / MICROS_PER_MILLI
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        histogram.max() as f64 / MICROS_PER_MILLI,
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_buckets
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_histogram_prints_as_hdrhistogram_does() {
        // 1..=10,000 µs once each: 0.001 to 10.000 ms.
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for micros in 1..=10_000 {
            histogram.record(micros).unwrap();
        }
        let text = percentile_distribution(&histogram);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        let rows: Vec<Vec<&str>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        // The first row is the smallest value at its quantile, the middle
        // one the median, the last 100% with no 1/(1-p) column.
        assert_eq!(rows[0], ["0.001", "0.000000000000", "1", "1.00"]);
        // 5,000 µs falls in the 4 µs-wide bucket 5,000..=5,003 (three
        // significant figures), shown by its highest value, with its count.
        assert!(
            rows.contains(&vec!["5.003", "0.500000000000", "5003", "2.00"]),
            "{text}"
        );
        assert_eq!(rows.last().unwrap(), &["10.007", "1.000000000000", "10000"]);
        // Values and quantiles never fall; counts end at the total.
        for pair in rows.windows(2) {
            let number = |row: &Vec<&str>, i: usize| row[i].parse::<f64>().unwrap();
            assert!(number(&pair[0], 0) <= number(&pair[1], 0), "{pair:?}");
            assert!(number(&pair[0], 1) <= number(&pair[1], 1), "{pair:?}");
            assert!(number(&pair[0], 2) <= number(&pair[1], 2), "{pair:?}");
        }
        let footer: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with('#'))
            .collect();
        assert_eq!(
            footer,
            [
                "#[Mean    =        5.001, StdDeviation   =        2.887]",
                "#[Max     =       10.007, Total count    =        10000]",
                "#[Buckets =           16, SubBuckets     =         2048]",
            ]
        );
    }
}
