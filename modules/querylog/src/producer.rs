//! The producer thread: takes records from the queue, hands them to librdkafka (a
//! `BaseProducer` this thread polls, so delivery reports arrive on it too), keeps the spill
//! file, and logs the counters.
//!
//! Nothing here runs on a session's task: a slow or dead broker makes the queue fill up and the
//! sessions drop records, never wait.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::ClientContext;

use crate::config::QueryLogConfig;
use crate::feed::{Buffers, Counters, FeedStats, Item};
use crate::shrink::shrink;
use crate::spill::{Spill, SpillError};

/// Records taken from the queue before the thread polls librdkafka for delivery reports.
const BATCH: usize = 2048;

/// How long the thread sleeps when it has nothing to do at all.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// How long it waits for delivery reports when records are in flight but the queue is empty.
const REPORT_WAIT: Duration = Duration::from_millis(5);

/// How long one flush call at shutdown serves delivery reports before the worker looks at what
/// they asked for (records to spill or to send again cut).
const FLUSH_STEP: Duration = Duration::from_millis(100);

/// How long the thread lets records gather after a batch smaller than [`BATCH`]: without
/// the pause it would spin, taking one record per turn (sessions never wake it while it
/// does not block on the queue, which keeps their hand-off a plain non-blocking send).
///
/// The thread sleeps rather than waiting in `BaseProducer::poll(timeout)`: rdkafka-rs polls
/// again for whatever is left of the timeout after each event, in whole milliseconds, so the
/// last sub-millisecond of every wait is a busy loop (a profile showed it as 20% of the
/// proxy's CPU). Delivery reports are served without waiting after each pause.
const GATHER_WAIT: Duration = Duration::from_millis(1);

/// How often the spill file is offered to Kafka again.
const SPILL_RETRY: Duration = Duration::from_millis(200);

/// The librdkafka properties the filter sets before the user's `kafka` map.
pub(crate) fn client_config(config: &QueryLogConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    // A 50 ms linger makes batches ten times larger than librdkafka's 5 ms: at 9,000 records/s
    // the proxy at 16 threads kept 0.98-1.05x its qps without the feed, against 0.79-0.85x
    // with 5 ms, as the broker and the producer handle a tenth of the requests.
    c.set("bootstrap.servers", &config.brokers)
        .set("client.id", "switchyard-querylog")
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("compression.type", default_compression())
        .set("message.timeout.ms", "300000")
        .set("queue.buffering.max.messages", "100000")
        // librdkafka's own default (1 GiB) would let its queue hold far more than the filter's
        // `queue_bytes`; 64 MiB bounds the memory of the records it holds alike.
        .set("queue.buffering.max.kbytes", "65536")
        .set_log_level(RDKafkaLogLevel::Warning);
    for (k, v) in &config.kafka {
        c.set(k, v);
    }
    c
}

/// `lz4` when the linked librdkafka has it built in (the bundled one does), else `none`.
fn default_compression() -> &'static str {
    static CODEC: OnceLock<&'static str> = OnceLock::new();
    CODEC.get_or_init(|| {
        let features = ClientConfig::new()
            .create_native_config()
            .and_then(|c| c.get("builtin.features"))
            .unwrap_or_default();
        if features.split(',').any(|f| f == "lz4") {
            "lz4"
        } else {
            "none"
        }
    })
}

/// How the producer thread is told to stop, and tells that it has.
#[derive(Debug, Default)]
pub(crate) struct Control {
    stopping: AtomicBool,
    state: Mutex<ControlState>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct ControlState {
    deadline: Option<Instant>,
    done: bool,
}

impl Control {
    /// Asks the thread to finish by `deadline` (the first request wins).
    pub(crate) fn stop(&self, deadline: Instant) {
        let mut st = self.lock();
        st.deadline.get_or_insert(deadline);
        self.stopping.store(true, Ordering::Release);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn deadline(&self) -> Option<Instant> {
        self.lock().deadline
    }

    fn set_done(&self) {
        self.lock().done = true;
        self.cond.notify_all();
    }

    /// Waits until the thread is done or `until` passes; true if it is done.
    pub(crate) fn wait_done(&self, until: Instant) -> bool {
        let mut st = self.lock();
        while !st.done {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.cond.wait_timeout(st, left) {
                Ok((st, _)) => st,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The librdkafka callbacks: delivery reports and client errors.
pub(crate) struct FeedContext {
    counters: Arc<Counters>,
    spill: bool,
    /// Failed deliveries waiting to be spilled by the producer thread.
    retry: Mutex<Vec<Item>>,
    /// Records the broker refused as too large, waiting to be cut and sent again by the
    /// producer thread.
    too_large: Mutex<Vec<Refusal>>,
    /// Records from the spill file handed to librdkafka and not yet reported.
    resent_inflight: AtomicU64,
    /// The last client error logged, and when: the same error is logged once a minute.
    last_error: Mutex<Option<(String, Instant)>>,
}

/// A record Kafka refused as too large, with how it was sent.
pub(crate) struct Refusal {
    item: Item,
    how: Sent,
}

/// How a record was handed to librdkafka, carried in its delivery opaque.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    /// From the spill file.
    resent: bool,
    /// How often it was cut already (see [`shrink`]).
    shrink_level: usize,
}

impl Sent {
    fn opaque(self) -> usize {
        usize::from(self.resent) | self.shrink_level << 1
    }

    fn from_opaque(opaque: usize) -> Sent {
        Sent {
            resent: opaque & 1 != 0,
            shrink_level: opaque >> 1,
        }
    }
}

impl ClientContext for FeedContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::debug!(target: "librdkafka", facility = fac, "{message}")
            }
            _ => tracing::trace!(target: "librdkafka", facility = fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.counters.trouble();
        }
        let text = format!("{error}: {reason}");
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        let repeat = last
            .as_ref()
            .is_some_and(|(t, at)| *t == text && at.elapsed() < Duration::from_secs(60));
        if !repeat {
            tracing::warn!(error = %text, "querylog: Kafka client error");
            *last = Some((text, Instant::now()));
        }
    }
}

impl ProducerContext for FeedContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let how = Sent::from_opaque(opaque);
        let resent = how.resent;
        if resent {
            self.resent_inflight.fetch_sub(1, Ordering::Relaxed);
        }
        match result {
            Ok(_) => {
                self.counters.delivered_one();
                if resent {
                    Counters::add(&self.counters.resent, 1);
                }
            }
            Err((error, msg)) => {
                self.counters.trouble();
                let item = || Item {
                    key: msg
                        .key()
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .and_then(|k| k.parse().ok())
                        .unwrap_or(0),
                    payload: msg.payload().unwrap_or_default().to_vec(),
                };
                if too_large(error) {
                    // The broker's (or the topic's) limit is below librdkafka's: cut it.
                    self.too_large
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Refusal { item: item(), how });
                } else if self.spill && !permanent(error) {
                    self.retry
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(item());
                } else {
                    Counters::add(&self.counters.failed, 1);
                }
            }
        }
    }
}

/// Errors that a smaller record may cure: the record (or the batch it went in) is larger
/// than librdkafka's `message.max.bytes`, the broker's, or the topic's `max.message.bytes`.
fn too_large(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

/// Errors that sending the same record again cannot cure.
fn permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

/// Hands one record to librdkafka (which copies it).
fn produce(
    producer: &BaseProducer<FeedContext>,
    topic: &str,
    key_buf: &mut String,
    key: u32,
    payload: &[u8],
    how: Sent,
) -> Result<(), Refused> {
    key_buf.clear();
    // Writing to a String cannot fail.
    let _ = write!(key_buf, "{key}");
    let record = BaseRecord::with_opaque_to(topic, how.opaque())
        .key(key_buf.as_str())
        .payload(payload);
    match producer.send(record) {
        Ok(()) => Ok(()),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Err(Refused::Full),
        Err((e, _)) if too_large(&e) => Err(Refused::TooLarge),
        Err((e, _)) if permanent(&e) => Err(Refused::Permanent(e)),
        Err((e, _)) => Err(Refused::Transient(e)),
    }
}

/// Hands one record to librdkafka like [`produce`]; when it is too large, cuts it (see
/// [`shrink`]) and tries again, until it is taken or no cut is left (`Refused::TooLarge`).
#[allow(clippy::too_many_arguments)]
fn produce_cut(
    producer: &BaseProducer<FeedContext>,
    topic: &str,
    key_buf: &mut String,
    counters: &Counters,
    key: u32,
    payload: &[u8],
    mut how: Sent,
) -> Result<(), Refused> {
    let mut cut: Option<Vec<u8>> = None;
    loop {
        let bytes = cut.as_deref().unwrap_or(payload);
        match produce(producer, topic, key_buf, key, bytes, how) {
            Err(Refused::TooLarge) => {
                let (smaller, level) = shrink(bytes, how.shrink_level).ok_or(Refused::TooLarge)?;
                Counters::add(&counters.shrunk, 1);
                how.shrink_level = level;
                cut = Some(smaller);
            }
            sent => return sent,
        }
    }
}

/// Why librdkafka did not take a record.
enum Refused {
    /// Its queue is full: later.
    Full,
    /// Something that may pass (unknown topic, not connected...): later, or spill.
    Transient(KafkaError),
    /// The record is larger than librdkafka's `message.max.bytes`: cut it and try again.
    TooLarge,
    /// The record can never be sent.
    Permanent(KafkaError),
}

/// Creates the producer (without waiting for any broker), opens the spill file, and starts the
/// producer thread.
pub(crate) fn start(
    name: &str,
    config: &QueryLogConfig,
    counters: Arc<Counters>,
    rx: Receiver<Item>,
    buffers: Arc<Buffers>,
    control: Arc<Control>,
) -> Result<(JoinHandle<()>, Option<std::path::PathBuf>), String> {
    let spill = match &config.spill {
        None => None,
        Some(dir) => {
            let s = Spill::open(dir, name, config.spill_max_size).map_err(|e| {
                format!("spill: cannot open a spill file in {}: {e}", dir.display())
            })?;
            if s.unsent() > 0 {
                tracing::info!(
                    filter = name,
                    path = %s.path().display(),
                    records = s.unsent(),
                    "querylog: sending again the records an earlier run spilled"
                );
                Counters::add(&counters.accepted, s.unsent());
            }
            Some(s)
        }
    };
    let spill_path = spill.as_ref().map(|s| s.path().to_path_buf());
    let context = FeedContext {
        counters: counters.clone(),
        spill: spill.is_some(),
        retry: Mutex::new(Vec::new()),
        too_large: Mutex::new(Vec::new()),
        resent_inflight: AtomicU64::new(0),
        last_error: Mutex::new(None),
    };
    let producer: BaseProducer<FeedContext> = client_config(config)
        .create_with_context(context)
        .map_err(|e| format!("kafka: cannot create the Kafka producer: {e}"))?;
    let worker = Worker {
        name: name.to_string(),
        producer,
        rx,
        buffers,
        topic: config.topic.clone(),
        spill,
        counters,
        control,
        key: String::with_capacity(10),
        stats_interval: config.stats_interval,
        last_stats: FeedStats::default(),
        last_stats_at: Instant::now(),
        last_check: Instant::now(),
        last_spill_try: Instant::now(),
        dropped: Alarm::default(),
        spilled: Alarm::default(),
        failed: Alarm::default(),
    };
    let handle = std::thread::Builder::new()
        .name(format!("querylog-{name}"))
        .spawn(move || worker.run())
        .map_err(|e| format!("cannot start the producer thread: {e}"))?;
    Ok((handle, spill_path))
}

/// Warns once when a counter starts moving after standing still for a while.
#[derive(Default)]
struct Alarm {
    seen: u64,
    /// When the counter last moved, while it is moving.
    moving_since: Option<Instant>,
}

impl Alarm {
    /// True when `count` moved after a quiet period of `quiet`.
    fn moved(&mut self, count: u64, now: Instant, quiet: Duration) -> bool {
        if count > self.seen {
            self.seen = count;
            let first = self.moving_since.is_none();
            self.moving_since = Some(now);
            first
        } else {
            if self.moving_since.is_some_and(|t| now - t >= quiet) {
                self.moving_since = None;
            }
            false
        }
    }
}

struct Worker {
    name: String,
    producer: BaseProducer<FeedContext>,
    rx: Receiver<Item>,
    /// Where the records' buffers go back to the sessions.
    buffers: Arc<Buffers>,
    topic: String,
    spill: Option<Spill>,
    counters: Arc<Counters>,
    control: Arc<Control>,
    /// The Kafka key of the record being sent, as text.
    key: String,
    stats_interval: Duration,
    last_stats: FeedStats,
    last_stats_at: Instant,
    last_check: Instant,
    last_spill_try: Instant,
    dropped: Alarm,
    spilled: Alarm,
    failed: Alarm,
}

impl Worker {
    fn run(mut self) {
        loop {
            if self.control.stopping() {
                break;
            }
            let mut taken = 0;
            let mut gone = false;
            while taken < BATCH && !self.control.stopping() {
                match self.rx.try_recv() {
                    Ok(item) => {
                        self.take(item);
                        taken += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            if gone {
                break;
            }
            let idle = taken == 0;
            if taken > 0 && taken < BATCH {
                std::thread::sleep(GATHER_WAIT);
            }
            if idle {
                if self.producer.in_flight_count() > 0 {
                    std::thread::sleep(REPORT_WAIT);
                } else {
                    let spilled = self.spill.as_ref().is_some_and(|s| s.unsent() > 0);
                    let wait = if spilled { SPILL_RETRY } else { IDLE_WAIT };
                    match self.rx.recv_timeout(wait) {
                        Ok(item) => self.take(item),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            }
            self.serve_reports();
            self.housekeeping(idle);
        }
        self.finish();
    }

    /// Hands one record from the queue to librdkafka, or to the spill file.
    fn take(&mut self, item: Item) {
        self.counters.dequeued(&item);
        if self.spill.as_ref().is_some_and(|s| s.unsent() > 0) {
            // Records wait in the spill file: this one goes behind them, to keep the order.
            self.spill_record(item.key, &item.payload);
        } else {
            self.deliver(item.key, &item.payload, Sent::default());
        }
        self.buffers.give_back(item.payload);
    }

    /// Hands one record to librdkafka (cut if it is too large), or to the spill file when
    /// Kafka cannot take it now.
    fn deliver(&mut self, key: u32, payload: &[u8], how: Sent) {
        loop {
            let sent = produce_cut(
                &self.producer,
                &self.topic,
                &mut self.key,
                &self.counters,
                key,
                payload,
                how,
            );
            match sent {
                Ok(()) => {
                    if how.resent {
                        self.producer
                            .context()
                            .resent_inflight
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                Err(Refused::Full | Refused::Transient(_)) if self.spill.is_some() => {
                    self.spill_record(key, payload);
                    return;
                }
                Err(Refused::Full) => {
                    // No spill file: wait for librdkafka to make room. The queue fills up
                    // meanwhile and the sessions drop (and count) what does not fit.
                    if self.past_deadline() {
                        Counters::add(&self.counters.dropped_late, 1);
                        return;
                    }
                    self.producer.poll(Duration::from_millis(10));
                    self.housekeeping(false);
                }
                Err(Refused::TooLarge) => {
                    self.gave_up_too_large(payload.len());
                    return;
                }
                Err(Refused::Transient(e) | Refused::Permanent(e)) => {
                    tracing::debug!(filter = %self.name, error = %e, "querylog: record refused");
                    Counters::add(&self.counters.failed, 1);
                    return;
                }
            }
        }
    }

    /// True once a shutdown's deadline has passed.
    fn past_deadline(&self) -> bool {
        self.control.stopping() && self.control.deadline().is_none_or(|d| Instant::now() >= d)
    }

    /// A record stayed too large for Kafka after every cut: it is lost, and said so.
    fn gave_up_too_large(&self, len: usize) {
        Counters::add(&self.counters.failed, 1);
        tracing::warn!(filter = %self.name, bytes = len,
            "querylog: Kafka refused an audit record as too large even when cut; record lost");
    }

    fn spill_record(&mut self, key: u32, payload: &[u8]) {
        let Some(spill) = self.spill.as_mut() else {
            Counters::add(&self.counters.failed, 1);
            return;
        };
        match spill.append(key, payload) {
            Ok(true) => Counters::add(&self.counters.spilled, 1),
            Ok(false) => Counters::add(&self.counters.dropped_late, 1),
            Err(e) => {
                Counters::add(&self.counters.spilled, 1);
                self.spill_lost(e);
            }
        }
    }

    fn spill_lost(&self, e: SpillError) {
        Counters::add(&self.counters.failed, e.lost);
        tracing::warn!(
            filter = %self.name,
            error = %e.error,
            lost = e.lost,
            "querylog: spill file error; records lost"
        );
    }

    /// Serves delivery reports, and spills the records whose delivery failed.
    fn serve_reports(&mut self) {
        // Each poll serves at most one batch of reports.
        for _ in 0..8 {
            self.producer.poll(Duration::ZERO);
        }
        let retry = std::mem::take(
            &mut *self
                .producer
                .context()
                .retry
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for item in retry {
            self.spill_record(item.key, &item.payload);
        }
        let too_large = std::mem::take(
            &mut *self
                .producer
                .context()
                .too_large
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for Refusal { item, how } in too_large {
            // It passed librdkafka's own size check, so it must be cut before it goes again,
            // or the broker would refuse it again.
            match shrink(&item.payload, how.shrink_level) {
                Some((smaller, level)) => {
                    Counters::add(&self.counters.shrunk, 1);
                    let how = Sent {
                        shrink_level: level,
                        ..how
                    };
                    self.deliver(item.key, &smaller, how);
                }
                None => self.gave_up_too_large(item.payload.len()),
            }
        }
    }

    /// Spill retries, spill flushes, counters and warnings; cheap when nothing is due.
    fn housekeeping(&mut self, idle: bool) {
        let now = Instant::now();
        if self.spill.is_some() && (idle || now - self.last_spill_try >= SPILL_RETRY) {
            self.last_spill_try = now;
            self.resend();
        }
        if let Some(spill) = self.spill.as_mut() {
            if let Err(e) = spill.flush() {
                self.spill_lost(e);
            }
        }
        if now - self.last_check >= SPILL_RETRY {
            self.last_check = now;
            self.check_counters(now);
        }
    }

    /// Offers the spill file to librdkafka until its queue is full; empties the file once all
    /// of it was delivered.
    fn resend(&mut self) {
        let Worker {
            producer,
            topic,
            key: key_buf,
            spill: Some(spill),
            counters,
            ..
        } = self
        else {
            return;
        };
        let mut lost = None;
        loop {
            let sent = match spill.peek() {
                Ok(Some((key, payload))) => {
                    let how = Sent {
                        resent: true,
                        shrink_level: 0,
                    };
                    produce_cut(producer, topic, key_buf, counters, key, payload, how)
                }
                Ok(None) => break,
                Err(e) => {
                    lost = Some(e);
                    break;
                }
            };
            match sent {
                Ok(()) => {
                    producer
                        .context()
                        .resent_inflight
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(Refused::Full | Refused::Transient(_)) => break,
                Err(Refused::Permanent(_) | Refused::TooLarge) => {
                    Counters::add(&counters.failed, 1)
                }
            }
            if let Err(e) = spill.consume() {
                lost = Some(e);
                break;
            }
        }
        if let Some(e) = lost {
            self.spill_lost(e);
        }
        let ctx = self.producer.context();
        let settled = ctx.resent_inflight.load(Ordering::Relaxed) == 0
            && ctx
                .retry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
        if let Some(spill) = self.spill.as_mut() {
            if settled && spill.unsent() == 0 && spill.len() > 0 {
                if let Err(e) = spill.truncate() {
                    tracing::warn!(filter = %self.name, error = %e, "querylog: cannot truncate the spill file");
                }
            }
        }
    }

    /// Logs the counters every `stats_interval` when they changed, and warns when records
    /// start being dropped, spilled or failing.
    fn check_counters(&mut self, now: Instant) {
        let s = self.counters.snapshot();
        let quiet = self.stats_interval;
        if self.dropped.moved(s.dropped, now, quiet) {
            tracing::warn!(filter = %self.name, dropped = s.dropped, queued = s.queued,
                "querylog: audit records are being dropped (queue or spill file full)");
        }
        if self.spilled.moved(s.spilled, now, quiet) {
            tracing::warn!(filter = %self.name, spilled = s.spilled,
                "querylog: Kafka is not taking records; writing them to the spill file");
        }
        if self.failed.moved(s.failed, now, quiet) {
            tracing::warn!(filter = %self.name, failed = s.failed,
                "querylog: audit records failed delivery");
        }
        if now - self.last_stats_at >= self.stats_interval {
            self.last_stats_at = now;
            if s != self.last_stats {
                self.last_stats = s;
                log_stats(&self.name, &s, "querylog: feed counters");
            }
        }
    }

    /// Drains the queue, flushes librdkafka until the deadline, then spills (or fails) what is
    /// left, and says it is done.
    fn finish(mut self) {
        let before = self.counters.snapshot();
        let deadline = self
            .control
            .deadline()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        while let Ok(item) = self.rx.try_recv() {
            if self.spill.is_none() && Instant::now() >= deadline {
                self.counters.dequeued(&item);
                Counters::add(&self.counters.dropped_late, 1);
            } else {
                self.take(item);
            }
        }
        self.serve_reports();
        self.flush(deadline);
        if self.producer.in_flight_count() > 0 {
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            let until = Instant::now() + Duration::from_millis(500);
            while self.producer.in_flight_count() > 0 && Instant::now() < until {
                self.producer.poll(Duration::from_millis(10));
            }
        }
        self.serve_reports();
        if let Some(spill) = self.spill.as_mut() {
            if let Err(e) = spill.flush() {
                self.spill_lost(e);
            }
        }
        // Records a session slipped in while the queue was being drained.
        while let Ok(item) = self.rx.try_recv() {
            self.counters.dequeued(&item);
            Counters::add(&self.counters.dropped_late, 1);
        }
        let s = self.counters.snapshot();
        if s.failed + s.dropped > before.failed + before.dropped {
            tracing::warn!(filter = %self.name, failed = s.failed, dropped = s.dropped,
                "querylog: audit records did not reach Kafka before the shutdown deadline");
        }
        log_stats(&self.name, &s, "querylog: stopped");
        self.control.set_done();
    }

    /// Serves delivery reports, asking librdkafka to send what it holds, until nothing is in
    /// flight or the deadline passes.
    ///
    /// librdkafka sends a lingering record early only while a flush call is in progress, and
    /// rdkafka-rs's `flush` calls it without waiting (to serve reports in between), so a record
    /// may still wait out `linger.ms`: the config keeps that below the shutdown window
    /// (`MAX_LINGER_MS`), so every record leaves in time.
    fn flush(&mut self, deadline: Instant) {
        loop {
            self.serve_reports();
            let left = deadline.saturating_duration_since(Instant::now());
            if self.producer.in_flight_count() == 0 || left.is_zero() {
                return;
            }
            // An error is the step's timeout: the loop decides when to stop.
            let _ = self.producer.flush(left.min(FLUSH_STEP));
        }
    }
}

fn log_stats(name: &str, s: &FeedStats, message: &str) {
    tracing::info!(
        filter = name,
        delivered = s.delivered,
        failed = s.failed,
        dropped = s.dropped,
        spilled = s.spilled,
        resent = s.resent,
        shrunk = s.shrunk,
        queued = s.queued,
        "{message}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_user_properties() {
        let mut config = QueryLogConfig::default();
        assert_eq!(client_config(&config).get("linger.ms"), Some("50"));
        config.kafka.insert("linger.ms".into(), "20".into());
        let c = client_config(&config);
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(c.get("linger.ms"), Some("20"));
        assert_eq!(c.get("message.timeout.ms"), Some("300000"));
        assert_eq!(c.get("queue.buffering.max.messages"), Some("100000"));
        assert!(matches!(c.get("compression.type"), Some("lz4" | "none")));
        assert!(c.create_native_config().is_ok());
    }

    #[test]
    fn size_refusals_are_told_apart() {
        let e = |code| KafkaError::MessageProduction(code);
        assert!(too_large(&e(RDKafkaErrorCode::MessageSizeTooLarge)));
        assert!(too_large(&e(RDKafkaErrorCode::MessageBatchTooLarge)));
        assert!(too_large(&e(RDKafkaErrorCode::InvalidMessageSize)));
        assert!(!too_large(&e(RDKafkaErrorCode::QueueFull)));
        assert!(!too_large(&e(RDKafkaErrorCode::MessageTimedOut)));
        assert!(!too_large(&e(RDKafkaErrorCode::UnknownTopicOrPartition)));
        assert!(permanent(&e(RDKafkaErrorCode::InvalidRecord)));
        assert_eq!(
            client_config(&QueryLogConfig::default()).get("queue.buffering.max.kbytes"),
            Some("65536")
        );
    }

    #[test]
    fn the_opaque_carries_how_a_record_was_sent() {
        for resent in [false, true] {
            for shrink_level in 0..=crate::shrink::LEVELS.len() {
                let how = Sent {
                    resent,
                    shrink_level,
                };
                assert_eq!(Sent::from_opaque(how.opaque()), how);
            }
        }
        assert_eq!(Sent::default().opaque(), 0);
    }

    #[test]
    fn alarms_fire_once_per_burst() {
        let mut a = Alarm::default();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert!(!a.moved(0, t0, s));
        assert!(a.moved(1, t0, s));
        assert!(!a.moved(5, t0 + s / 2, s));
        assert!(!a.moved(5, t0 + s, s));
        assert!(!a.moved(5, t0 + s * 2, s), "quiet for a while now");
        assert!(a.moved(6, t0 + s * 3, s));
    }

    #[test]
    fn control_waits_and_times_out() {
        let c = Arc::new(Control::default());
        assert!(!c.wait_done(Instant::now() + Duration::from_millis(20)));
        c.stop(Instant::now() + Duration::from_secs(5));
        let first = c.deadline();
        c.stop(Instant::now());
        assert_eq!(c.deadline(), first, "the first deadline wins");
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.set_done());
        assert!(c.wait_done(Instant::now() + Duration::from_secs(5)));
        t.join().unwrap();
    }
}
