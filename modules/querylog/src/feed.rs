//! The session side of the audit feed: a bounded queue that sessions hand records to without
//! ever waiting, and the counters that account for every record.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use serde::Serialize;

/// One finished record on its way to Kafka.
#[derive(Debug)]
pub(crate) struct Item {
    /// The session id: the record's Kafka key.
    pub key: u32,
    pub payload: Vec<u8>,
}

impl Item {
    /// The memory the record holds while it waits in the queue.
    pub(crate) fn weight(&self) -> u64 {
        self.payload.capacity() as u64
    }
}

/// A snapshot of the feed's counters.
///
/// Every record a session hands over ends in exactly one of `delivered`, `failed` and
/// `dropped`, and is in `queued` until then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeedStats {
    /// Records Kafka acknowledged.
    pub delivered: u64,
    /// Records Kafka refused or that timed out (without a spill file), or that could not be
    /// written to the spill file.
    pub failed: u64,
    /// Records given up without trying: the queue was full, the spill file was full, or the
    /// filter was shutting down.
    pub dropped: u64,
    /// Times a record was written to the spill file (one record may be spilled again if its
    /// second delivery fails too).
    pub spilled: u64,
    /// Records delivered from the spill file (also counted in `delivered`).
    pub resent: u64,
    /// Times a record Kafka refused as too large was cut harder and sent again (the record
    /// still ends in exactly one of `delivered`, `failed` and `dropped`).
    pub shrunk: u64,
    /// Records in flight: in the queue, in librdkafka or unsent in the spill file.
    pub queued: u64,
}

/// The live counters, shared by the sessions and the producer thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records sessions put in the queue, plus records found in a spill file at start.
    pub accepted: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    /// Records the sessions could not put in the queue.
    pub dropped_early: AtomicU64,
    /// Records accepted and later given up (spill file full, shutdown).
    pub dropped_late: AtomicU64,
    pub spilled: AtomicU64,
    pub resent: AtomicU64,
    pub shrunk: AtomicU64,
    /// Bytes of the records in the queue (by [`Item::weight`]): added by the sessions, taken
    /// off by the producer thread as it receives them.
    pub queue_bytes: AtomicU64,
    /// Since when (Unix ms) records have been failing, spilled or dropped with none delivered;
    /// 0 while the feed is healthy.
    pub trouble_since: AtomicU64,
}

impl Counters {
    /// A consistent-enough snapshot: `queued` is derived, and clamped at 0 while a reader races
    /// the producer thread.
    pub(crate) fn snapshot(&self) -> FeedStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let delivered = get(&self.delivered);
        let failed = get(&self.failed);
        let dropped_late = get(&self.dropped_late);
        let accepted = get(&self.accepted);
        FeedStats {
            delivered,
            failed,
            dropped: get(&self.dropped_early) + dropped_late,
            spilled: get(&self.spilled),
            resent: get(&self.resent),
            shrunk: get(&self.shrunk),
            queued: accepted.saturating_sub(delivered + failed + dropped_late),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The producer thread took `item` off the queue.
    pub(crate) fn dequeued(&self, item: &Item) {
        self.queue_bytes.fetch_sub(item.weight(), Ordering::Relaxed);
    }

    /// Records are not getting through: the feed is degraded until one is delivered.
    pub(crate) fn trouble(&self) {
        if self.trouble_since.load(Ordering::Relaxed) == 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_millis() as u64);
            self.trouble_since.store(now.max(1), Ordering::Relaxed);
        }
    }

    /// A record got through.
    pub(crate) fn delivered_one(&self) {
        Counters::add(&self.delivered, 1);
        if self.trouble_since.load(Ordering::Relaxed) != 0 {
            self.trouble_since.store(0, Ordering::Relaxed);
        }
    }
}

/// Record buffers the producer thread hands back once librdkafka has copied the record, for
/// the sessions to write their next records into: steady traffic allocates none. Lock-free,
/// so that a session never waits for it.
#[derive(Debug)]
pub(crate) struct Buffers(ArrayQueue<Vec<u8>>);

/// How many buffers wait for reuse, at most.
const BUFFERS_KEPT: usize = 1024;

/// The largest buffer kept for reuse: a record usually takes under 1 KiB, and a queued
/// record weighs its buffer's capacity (see [`Item::weight`]).
const BUFFER_KEPT_MAX: usize = 4096;

impl Buffers {
    /// An empty buffer: one handed back, or a new one of `hint` bytes.
    pub(crate) fn take(&self, hint: usize) -> Vec<u8> {
        self.0.pop().unwrap_or_else(|| Vec::with_capacity(hint))
    }

    /// `buf`'s record is gone to Kafka (or the spill file): its buffer may serve again.
    pub(crate) fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() <= BUFFER_KEPT_MAX {
            buf.clear();
            let _ = self.0.push(buf);
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers(ArrayQueue::new(BUFFERS_KEPT))
    }
}

/// The sending half of the queue, shared by every session of the filter.
#[derive(Debug)]
pub(crate) struct Feed {
    tx: SyncSender<Item>,
    pub buffers: Arc<Buffers>,
    /// The most bytes of records the queue holds (`queue_bytes`).
    max_bytes: u64,
    /// Set at shutdown: later records are dropped.
    closed: AtomicBool,
    pub counters: Arc<Counters>,
}

impl Feed {
    /// A queue of `size` records and `max_bytes` bytes, and its receiving half (for the
    /// producer thread).
    pub(crate) fn new(
        size: usize,
        max_bytes: usize,
        counters: Arc<Counters>,
    ) -> (Feed, Receiver<Item>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(size);
        let feed = Feed {
            tx,
            buffers: Arc::default(),
            max_bytes: max_bytes as u64,
            closed: AtomicBool::new(false),
            counters,
        };
        (feed, rx)
    }

    /// Hands a record over without waiting; when the queue is full, in records or in bytes
    /// (or closed), the record is dropped and counted.
    pub(crate) fn send(&self, key: u32, payload: Vec<u8>) {
        if self.closed.load(Ordering::Relaxed) {
            Counters::add(&self.counters.dropped_early, 1);
            return;
        }
        let item = Item { key, payload };
        let weight = item.weight();
        // Reserve the bytes first, so sessions racing each other cannot all pass the check.
        // An empty queue takes any one record: a record larger than `queue_bytes` is not
        // lost for its size alone (the cap on its fields keeps it small anyway).
        let before = self
            .counters
            .queue_bytes
            .fetch_add(weight, Ordering::Relaxed);
        if before != 0 && before + weight > self.max_bytes {
            self.counters
                .queue_bytes
                .fetch_sub(weight, Ordering::Relaxed);
            self.refused();
            return;
        }
        match self.tx.try_send(item) {
            Ok(()) => Counters::add(&self.counters.accepted, 1),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters
                    .queue_bytes
                    .fetch_sub(weight, Ordering::Relaxed);
                self.refused();
            }
        }
    }

    fn refused(&self) {
        Counters::add(&self.counters.dropped_early, 1);
        self.counters.trouble();
    }

    /// Stops taking records.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts() {
        let counters = Arc::new(Counters::default());
        let (feed, rx) = Feed::new(2, 1 << 20, counters.clone());
        for i in 0..5 {
            feed.send(i, vec![b'x']);
        }
        let s = counters.snapshot();
        assert_eq!((s.queued, s.dropped), (2, 3));
        assert_eq!(rx.try_recv().unwrap().key, 0);
        Counters::add(&counters.delivered, 1);
        feed.close();
        feed.send(9, Vec::new());
        let s = counters.snapshot();
        assert_eq!((s.queued, s.dropped, s.delivered), (1, 4, 1));
        drop(rx);
    }

    #[test]
    fn a_gone_producer_counts_as_dropped() {
        let counters = Arc::new(Counters::default());
        let (feed, rx) = Feed::new(2, 1 << 20, counters.clone());
        drop(rx);
        feed.send(1, Vec::new());
        assert_eq!(counters.snapshot().dropped, 1);
        assert_eq!(counters.queue_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes() {
        let counters = Arc::new(Counters::default());
        let (feed, rx) = Feed::new(100, 1000, counters.clone());
        let bytes = || counters.queue_bytes.load(Ordering::Relaxed);
        for i in 0..3 {
            feed.send(i, vec![b'x'; 400]);
        }
        // Two fit in 1000 bytes; the third is dropped like a record past `queue_size`.
        let s = counters.snapshot();
        assert_eq!((s.queued, s.dropped, bytes()), (2, 1, 800));
        // Small records still fit in what is left.
        feed.send(3, vec![b'x'; 200]);
        assert_eq!((counters.snapshot().queued, bytes()), (3, 1000));
        feed.send(4, vec![b'x'; 1]);
        assert_eq!(counters.snapshot().dropped, 2);
        // The producer taking records off makes room again.
        for _ in 0..3 {
            let item = rx.try_recv().unwrap();
            counters.dequeued(&item);
        }
        assert_eq!(bytes(), 0);
        // An empty queue takes even a record larger than the bound, so none is lost for its
        // size alone; the next has to wait for it to leave.
        feed.send(5, vec![b'x'; 5000]);
        feed.send(6, vec![b'x'; 10]);
        assert_eq!((counters.snapshot().dropped, bytes()), (3, 5000));
        let big = rx.try_recv().unwrap();
        assert_eq!(big.key, 5);
        counters.dequeued(&big);
        assert_eq!(bytes(), 0);
    }

    #[test]
    fn a_full_queue_gives_its_bytes_back() {
        let counters = Arc::new(Counters::default());
        let (feed, _rx) = Feed::new(1, 1 << 20, counters.clone());
        feed.send(1, vec![b'x'; 10]);
        feed.send(2, vec![b'x'; 10]);
        assert_eq!(counters.snapshot().dropped, 1);
        assert_eq!(counters.queue_bytes.load(Ordering::Relaxed), 10);
    }
}
