//! `querylog`: a filter that publishes one JSON audit record per client command, login
//! failure, connect and disconnect to a Kafka topic (schema `switchyard.audit.v1`), for the
//! security team's audit feed.
//!
//! - `config`: the options ([`QueryLogConfig`]);
//! - `scope`: which sessions (users, client networks) and statements (regexes) are recorded;
//! - `redact`: passwords in account statements are masked before the text leaves the proxy;
//! - `record`: the record's JSON shape;
//! - `session`: the per-session half, which follows the session's database and prepared
//!   statements and builds each record on the session's task;
//! - `feed`: the bounded queue between the sessions and Kafka, and the counters ([`FeedStats`]);
//! - `producer`: the thread that produces to Kafka with librdkafka;
//! - `shrink`: cuts a record Kafka refused as too large, to send it again;
//! - `spill`: the optional spill file that keeps records while Kafka cannot take them.
//!
//! The statement path never waits on Kafka: a record is handed over with a non-blocking
//! `try_send`, and dropped (and counted) when the queue is full (in records or in bytes).
//!
//! The audit trail can be neither evaded nor inflated by what a client sends: every field
//! the client chooses is capped (statement text at `max_text_bytes`, names and messages at
//! fixed sizes the server itself never exceeds, see `record`), and a record Kafka still refuses
//! as too large is cut harder and sent again (`shrink`), never silently lost.

#![forbid(unsafe_code)]

mod config;
mod feed;
mod producer;
mod record;
mod redact;
mod scope;
mod session;
mod shrink;
mod spill;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_api::{
    ClientInfo, Filter, FilterModule, FilterSession, LoginFailure, MetricSample, OptionError,
};

pub use config::QueryLogConfig;
pub use feed::FeedStats;

use feed::{Counters, Feed};
use producer::Control;
use scope::Scope;
use session::{QueryLogSession, Shared, Unrecorded};

/// The `querylog` filter: one per configured filter, shared by the services that list it.
pub struct QueryLog {
    name: String,
    topic: String,
    brokers: String,
    spill_path: Option<PathBuf>,
    shared: Arc<Shared>,
    control: Arc<Control>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl QueryLog {
    /// `name` is the filter's configured name (used for the spill file name and logs).
    /// Creates the producer (it does not wait for a broker) and starts the producer thread.
    pub fn new(name: &str, config: QueryLogConfig) -> Result<QueryLog, String> {
        config
            .check()
            .map_err(|(key, msg)| format!("{key}: {msg}"))?;
        let scope = Scope::new(&config)?;
        let counters = Arc::new(Counters::default());
        let (feed, rx) = Feed::new(config.queue_size, config.queue_bytes, counters.clone());
        let control = Arc::new(Control::default());
        let buffers = feed.buffers.clone();
        let (thread, spill_path) =
            producer::start(name, &config, counters, rx, buffers, control.clone())?;
        let shared = Arc::new(Shared {
            instance: config.instance_name(),
            canonical_only: config.canonical_only,
            max_text_bytes: config.max_text_bytes,
            scope,
            feed,
        });
        Ok(QueryLog {
            name: name.to_string(),
            topic: config.topic,
            brokers: config.brokers,
            spill_path,
            shared,
            control,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A snapshot of the feed's counters.
    pub fn stats(&self) -> FeedStats {
        self.shared.feed.counters.snapshot()
    }

    /// Stops taking records and asks the producer thread to finish by `deadline`.
    fn stop(&self, deadline: Instant) {
        self.shared.feed.close();
        self.control.stop(deadline);
    }
}

impl FilterModule for QueryLog {
    const NAME: &'static str = "querylog";
    type Config = QueryLogConfig;

    fn check(config: &QueryLogConfig) -> Result<(), OptionError> {
        config.check()
    }

    fn build(name: &str, config: QueryLogConfig) -> Result<Arc<dyn Filter>, String> {
        Ok(Arc::new(QueryLog::new(name, config)?))
    }
}

impl Filter for QueryLog {
    fn new_session(&self, client: &ClientInfo) -> Box<dyn FilterSession> {
        if self
            .shared
            .scope
            .session(&client.user, client.client_addr.ip())
        {
            Box::new(QueryLogSession::new(self.shared.clone(), client))
        } else {
            Box::new(Unrecorded)
        }
    }

    fn on_login_failed(&self, f: &LoginFailure<'_>) {
        let sh = &self.shared;
        if !sh.scope.session(f.user, f.client_addr.ip()) {
            return;
        }
        let json = session::login_failed_record(&sh.instance, f);
        sh.feed.send(f.session_id.0, json);
    }

    fn diagnostics(&self) -> serde_json::Value {
        let s = self.stats();
        serde_json::json!({
            "topic": self.topic,
            "brokers": self.brokers,
            "instance": self.shared.instance,
            "spill_file": self.spill_path.as_ref().map(|p| p.display().to_string()),
            "delivered": s.delivered,
            "failed": s.failed,
            "dropped": s.dropped,
            "spilled": s.spilled,
            "resent": s.resent,
            "shrunk": s.shrunk,
            "queued": s.queued,
            "queued_bytes": self
                .shared
                .feed
                .counters
                .queue_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    fn metrics(&self) -> Vec<MetricSample> {
        let s = self.stats();
        let records = |outcome: &'static str, n: u64| {
            MetricSample::counter(
                "audit_records_total",
                "Audit records by how they ended: delivered (Kafka acknowledged), failed \
                 (refused, timed out, or not written to the spill file) or dropped (queue or \
                 spill file full, shutdown). Each record ends in exactly one.",
                n,
            )
            .label("outcome", outcome)
        };
        vec![
            records("delivered", s.delivered),
            records("failed", s.failed),
            records("dropped", s.dropped),
            MetricSample::counter(
                "audit_records_spilled_total",
                "Times an audit record was written to the spill file because Kafka did not \
                 take it.",
                s.spilled,
            ),
            MetricSample::counter(
                "audit_records_resent_total",
                "Audit records delivered from the spill file (also counted as delivered).",
                s.resent,
            ),
            MetricSample::counter(
                "audit_records_shrunk_total",
                "Audit records that Kafka refused as too large and that were cut down and \
                 sent again.",
                s.shrunk,
            ),
            MetricSample::gauge(
                "audit_records_queued",
                "Audit records in flight: queued, in the Kafka client or unsent in the spill \
                 file.",
                s.queued as f64,
            ),
        ]
    }

    fn health(&self) -> Option<String> {
        let since = self
            .shared
            .feed
            .counters
            .trouble_since
            .load(std::sync::atomic::Ordering::Relaxed);
        (since != 0).then(|| {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH + Duration::from_millis(since))
                .map_or(0, |d| d.as_secs());
            format!(
                "audit feed '{}': records have not been reaching Kafka ({}) for {secs}s",
                self.name, self.brokers
            )
        })
    }

    fn shutdown(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.stop(deadline);
        // The thread gives up on Kafka at the deadline, then needs a moment to purge and spill.
        if !self.control.wait_done(deadline + Duration::from_secs(1)) {
            tracing::warn!(filter = %self.name, "querylog: the producer thread did not stop in time");
            return;
        }
        // librdkafka takes a moment to close its connections; wait for it only briefly.
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let until = Instant::now() + Duration::from_secs(1);
            while !handle.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if handle.is_finished() && handle.join().is_err() {
                tracing::error!(filter = %self.name, "querylog: the producer thread panicked");
            }
        }
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        // Without a shutdown: let the thread finish on its own, briefly, without waiting here.
        self.stop(Instant::now() + Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests;
