//! `GET /metrics`: the I/O thread's counters and histograms, the
//! market's activity, the feed's and the shared (matching thread,
//! journal, replica) metrics, in the Prometheus text format.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::metrics;

use super::{CommandName, Front, ReadName};

impl Front {
    /// The `GET /metrics` text.
    pub(super) fn metrics_text(&self) -> String {
        let mut out = String::with_capacity(4096);
        metrics::write_summary(
            &mut out,
            "orderbook_command_latency_seconds",
            "From a command's stamp at the front to its answer being ready there (matching and journal included).",
            &self.stats.command_latency,
        );
        metrics::write_histogram(
            &mut out,
            "orderbook_command_latency_histogram_seconds",
            "orderbook_command_latency_seconds as histogram buckets.",
            &self.stats.command_latency,
        );
        let labels = CommandName::ALL.map(CommandName::label);
        let by_command = labelled("command", &labels, &self.stats.latency_by_command);
        metrics::write_histograms(
            &mut out,
            "orderbook_command_latency_by_command_histogram_seconds",
            "orderbook_command_latency_histogram_seconds by command: place, modify, cancel, cancel_all (batch items each as its command).",
            &by_command,
        );
        let labels = ReadName::ALL.map(ReadName::label);
        let by_read = labelled("read", &labels, &self.stats.latency_by_read);
        metrics::write_histograms(
            &mut out,
            "orderbook_read_latency_histogram_seconds",
            "Reads that pass through the matching thread (GET /orders, /order/{id}, /book, /trades, /candles, /ticker), from sending it there to the answer being ready at the front, by read.",
            &by_read,
        );
        let _ = writeln!(
            out,
            "# HELP orderbook_responses_total Responses by status class."
        );
        let _ = writeln!(out, "# TYPE orderbook_responses_total counter");
        for (class, count) in self.stats.responses.iter().enumerate().skip(1) {
            let _ = writeln!(
                out,
                "orderbook_responses_total{{class=\"{class}xx\"}} {count}"
            );
        }
        metrics::write_value(
            &mut out,
            "orderbook_overloaded_total",
            "counter",
            "Requests answered 503 because the command ring was full.",
            self.stats.overloaded,
        );
        metrics::write_value(
            &mut out,
            "orderbook_listing_bytes",
            "gauge",
            "Bytes of large listings and order snapshots (64 KiB or more) built and not yet written to their clients.",
            self.listing_memory.held() as u64,
        );
        metrics::write_value(
            &mut out,
            "orderbook_listings_refused_total",
            "counter",
            "Listings answered 503, and order snapshots closed with 1013, because those built and not yet read held --max-listing-bytes.",
            self.stats.listings_refused,
        );
        metrics::write_value(
            &mut out,
            "orderbook_rate_limited_orders_total",
            "counter",
            "Orders answered 429 by --rate-limit (each order of a batch counted).",
            self.stats.rate_limited,
        );
        metrics::write_value(
            &mut out,
            "orderbook_cancel_all_after_armed",
            "gauge",
            "Deadlines of POST /orders/cancel_all_after set: the one of every order and those by name prefix.",
            self.cancel_after.armed() as u64,
        );
        metrics::write_value(
            &mut out,
            "orderbook_cancel_all_after_fired_total",
            "counter",
            "Times a cancel-all deadline passed with no refresh and the resting orders it covers were cancelled.",
            self.cancel_after.fired(),
        );
        metrics::write_value(
            &mut out,
            "orderbook_connections_accepted_total",
            "counter",
            "Connections accepted.",
            self.stats.accepted,
        );
        metrics::write_value(
            &mut out,
            "orderbook_connections_refused_total",
            "counter",
            "Connections answered 503 and closed by --max-connections (also counted in orderbook_responses_total's 5xx).",
            self.stats.refused,
        );
        metrics::write_value(
            &mut out,
            "orderbook_connections_open",
            "gauge",
            "Connections open now.",
            self.open as u64,
        );
        self.write_timeout_metrics(&mut out);
        metrics::write_value(&mut out, "orderbook_output_ring_full_total", "counter", "Times the matching thread waited for room on the output ring (back-pressure from its slowest reader).", self.outputs.writer_full_events());
        self.stats.activity.write(&mut out);
        for (name, kind, help, value) in [
            ("orderbook_feed_subscribers", "gauge", "WebSocket subscribers connected.", self.subscribers.len() as u64),
            ("orderbook_feed_frames_queued_total", "counter", "Feed frames queued to subscribers (one frame shared by many, counted per subscriber).", self.feed_stats.frames_queued),
            ("orderbook_feed_slow_closed_total", "counter", "Subscribers closed (1008) because their send queue passed its bound.", self.feed_stats.slow_closed),
            ("orderbook_feed_unresponsive_closed_total", "counter", "Subscribers closed because a ping went unanswered.", self.feed_stats.unresponsive_closed),
            ("orderbook_feed_order_followers", "gauge", "Subscribers following the orders channel (all orders, or by name prefix); the replica builds order messages only while there are any.", self.order_feed.as_ref().map_or(0, |feed| feed.followers.load(std::sync::atomic::Ordering::Relaxed) as u64)),
            ("orderbook_feed_order_messages_total", "counter", "Order messages the replica built (one per change of an order while someone follows the channel).", self.feed_stats.order_messages),
        ] {
            metrics::write_value(&mut out, name, kind, help, value);
        }
        self.shared_metrics.write(&mut out);
        out
    }
}

/// Each histogram with its label (`key="value"`), for
/// [`metrics::write_histograms`].
fn labelled<'h>(
    key: &str,
    values: &[&str],
    histograms: &'h [Histogram<u64>],
) -> Vec<(String, &'h Histogram<u64>)> {
    values
        .iter()
        .zip(histograms)
        .map(|(value, histogram)| (format!("{key}=\"{value}\""), histogram))
        .collect()
}
