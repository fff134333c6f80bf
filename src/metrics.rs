//! Prometheus metrics: what an operator graphs and alerts on. One registry per process,
//! passed around (never a global), rendered in the text exposition format at `/metrics`.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Polls by outcome: stored, not_modified, unchanged, failed.
    pub polls: IntCounterVec,
    /// Entries written by kind: new, updated.
    pub entries: IntCounterVec,
    pub fetch_seconds: Histogram,
    /// HTTP requests by route and status.
    pub requests: IntCounterVec,
    /// Feed bodies rendered (cache misses), by kind: output, adhoc.
    pub renders: IntCounterVec,
    /// Feeds whose last poll failed.
    pub feeds_failing: IntGauge,
    /// WebSub pings to the hub, by result: ok, failed.
    pub websub: IntCounterVec,
}

/// Time to poll one feed: buckets from a fast loopback 304 (5 ms) to the default 30 s timeout.
fn fetch_histogram() -> Histogram {
    let buckets = vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    Histogram::with_opts(
        HistogramOpts::new(
            "fetch_duration_seconds",
            "Time to poll one feed, fetch to store.",
        )
        .buckets(buckets),
    )
    .expect("static metric definition")
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("aggregate".into()), None).expect("static prefix is valid");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let polls = counter("polls_total", "Feed polls by outcome.", &["outcome"]);
        let entries = counter(
            "entries_stored_total",
            "Entries written, by kind.",
            &["kind"],
        );
        let requests = counter(
            "http_requests_total",
            "HTTP requests served, by route and status.",
            &["route", "status"],
        );
        let renders = counter(
            "renders_total",
            "Feed bodies rendered because the cache had none for the store's state, by kind.",
            &["kind"],
        );
        let websub = counter(
            "websub_pings_total",
            "WebSub publish pings sent to the hub, by result.",
            &["result"],
        );
        let fetch_seconds = fetch_histogram();
        registry
            .register(Box::new(fetch_seconds.clone()))
            .expect("registered once");
        let feeds_failing = IntGauge::new("feeds_failing", "Feeds whose last poll failed.")
            .expect("static metric definition");
        registry
            .register(Box::new(feeds_failing.clone()))
            .expect("registered once");
        Metrics {
            registry,
            polls,
            entries,
            fetch_seconds,
            requests,
            renders,
            feeds_failing,
            websub,
        }
    }

    pub fn observe_poll(&self, outcome: &str, elapsed: Duration) {
        self.polls.with_label_values(&[outcome]).inc();
        self.fetch_seconds.observe(elapsed.as_secs_f64());
    }

    /// Entries a poll stored: new ones and updated ones.
    pub fn count_entries(&self, new: usize, updated: usize) {
        self.entries.with_label_values(&["new"]).inc_by(new as u64);
        self.entries
            .with_label_values(&["updated"])
            .inc_by(updated as u64);
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
