//! The live source: drains the kernel's ring buffer when the kernel wakes
//! it or its poll interval ends, and hands decoded records to the
//! pipeline. Never blocks the kernel: when this reader falls behind, the
//! kernel skips and counts.

use std::{
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tokio::sync::mpsc;
use tracing::debug;

use super::{Clock, Record, decode};

/// Counters of the reader.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Records read.
    pub records: AtomicU64,
    /// Records that failed to decode.
    pub bad_records: AtomicU64,
    /// Bytes of records handed to the pipeline and not yet taken (at most
    /// [`QUEUE_BYTES`] and one record; see [`ReaderStats::taken`]).
    pub queued_bytes: AtomicUsize,
}

impl ReaderStats {
    /// What a queued record holds in memory.
    fn weight(record: &Record) -> usize {
        size_of::<Record>() + record.segment.data.capacity()
    }

    /// The pipeline took `record` off the queue.
    pub fn taken(&self, record: &Record) {
        self.queued_bytes
            .fetch_sub(Self::weight(record), Ordering::Relaxed);
    }
}

/// Bytes of decoded records the reader queues for the pipeline at most.
/// Past it the reader waits and the kernel's ring (`ring_buffer_bytes`)
/// buffers; when that is full too the kernel skips and counts
/// (`ringbuf_full`). A count bound alone let the queue hold 65,536 records
/// of up to `request_bytes` each.
pub const QUEUE_BYTES: usize = 16 << 20;

/// How often a quiet reader drains without a wake-up.
pub const POLL: Duration = Duration::from_millis(2);

/// How often the reader drains while records flow: the bound on a
/// record's wait in the ring (the kernel only wakes the reader for the
/// first record on a drained ring and once 32 KiB are waiting).
pub const ACTIVE_POLL: Duration = Duration::from_micros(200);

/// The reader counts as active this long after its last record.
const ACTIVE_FOR: Duration = Duration::from_millis(50);

/// Most records decoded per drain before they are handed on.
const BATCH: usize = 1024;

/// Drains up to [`BATCH`] records; returns them and whether more remain.
fn drain(ring: &mut RingBuf<MapData>, clock: &Clock, stats: &ReaderStats) -> (Vec<Record>, bool) {
    let mut batch = Vec::new();
    while let Some(item) = ring.next() {
        stats.records.fetch_add(1, Ordering::Relaxed);
        match decode(&item, clock) {
            Ok(seg) => batch.push(seg),
            Err(e) => {
                stats.bad_records.fetch_add(1, Ordering::Relaxed);
                debug!(error = %e, "bad ring record");
            }
        }
        if batch.len() >= BATCH {
            return (batch, true);
        }
    }
    (batch, false)
}

/// The reader thread; told to stop on [`Reader::stop`] or drop. It ends
/// within one poll interval, or as soon as the pipeline's receiver is gone
/// when it is waiting for room in the queue (so stopping never waits on
/// the pipeline that is stopping it).
pub struct Reader {
    stop: Arc<AtomicBool>,
}

impl Reader {
    /// Asks the thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the reader: a thread of its own, since its poll interval is
/// finer than tokio's millisecond timer. It reads records until `tx`
/// closes or [`Reader::stop`]; while `paused` is set it stops draining (an
/// operator drill and the back-pressure test use this).
///
/// The kernel wakes it (poll) for the first record on a drained ring and
/// once 32 KiB of records are waiting, so a busy ring costs one wake-up
/// per batch, not per request. Between wake-ups it drains every
/// [`ACTIVE_POLL`] while records flow and every [`POLL`] when quiet.
pub fn spawn(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Record>,
    stats: Arc<ReaderStats>,
    paused: Arc<AtomicBool>,
) -> std::io::Result<Reader> {
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::Builder::new()
        .name("jwtmon-ring".into())
        .spawn({
            let stop = stop.clone();
            move || read(ring, &tx, &stats, &paused, &stop)
        })?;
    Ok(Reader { stop })
}

fn read(
    mut ring: RingBuf<MapData>,
    tx: &mpsc::Sender<Record>,
    stats: &ReaderStats,
    paused: &AtomicBool,
    stop: &AtomicBool,
) {
    let clock = Clock::now();
    // None until the first record: the reader starts quiet.
    let mut last_record: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
        if paused.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            continue;
        }
        let (batch, more) = drain(&mut ring, &clock, stats);
        if !batch.is_empty() {
            last_record = Some(Instant::now());
        }
        for record in batch {
            if !hand_on(record, tx, stats, stop, QUEUE_BYTES) {
                return;
            }
        }
        if more {
            continue;
        }
        let timeout = if last_record.is_some_and(|t| t.elapsed() < ACTIVE_FOR) {
            ACTIVE_POLL
        } else {
            POLL
        };
        wait_readable(ring.as_raw_fd(), timeout);
    }
}

/// Queues `record` for the pipeline, first waiting while more than `limit`
/// bytes are queued. False when the pipeline is gone or the reader is
/// told to stop.
fn hand_on(
    record: Record,
    tx: &mpsc::Sender<Record>,
    stats: &ReaderStats,
    stop: &AtomicBool,
    limit: usize,
) -> bool {
    while stats.queued_bytes.load(Ordering::Relaxed) > limit {
        if stop.load(Ordering::Relaxed) || tx.is_closed() {
            return false;
        }
        std::thread::sleep(ACTIVE_POLL);
    }
    stats
        .queued_bytes
        .fetch_add(ReaderStats::weight(&record), Ordering::Relaxed);
    tx.blocking_send(record).is_ok()
}

/// Waits until `fd` is readable or `timeout` passes (ppoll: ns precision).
fn wait_readable(fd: std::os::fd::RawFd, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::c_long::try_from(timeout.as_nanos()).unwrap_or(2_000_000),
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask. An error
    // (EINTR) only means the next drain comes sooner.
    unsafe {
        libc::ppoll(&raw mut pfd, 1, &raw const ts, std::ptr::null());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        capture::{Direction, RecordKind, Segment},
        transport::Transport,
    };

    fn record(bytes: usize) -> Record {
        Record {
            kind: RecordKind::Client,
            flags: 0,
            segment: Segment {
                dir: Direction::Request,
                time: std::time::SystemTime::UNIX_EPOCH,
                src: "192.0.2.1:40000".parse().unwrap(),
                dst: "192.0.2.2:80".parse().unwrap(),
                seq: 1,
                ack: 1,
                payload_len: bytes as u32,
                data: vec![b'x'; bytes],
                transport: Transport::Tcp,
            },
            tgid: 0,
            listen_fd: 0,
        }
    }

    /// The queue is bounded by bytes, not only by records: past the bound
    /// the reader waits until the pipeline takes one, and then goes on.
    #[test]
    fn the_reader_waits_while_the_queue_is_over_its_bytes() {
        let (tx, mut rx) = mpsc::channel(1024);
        let stats = Arc::new(ReaderStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let limit = 3000;
        // Two 2,000-byte records: the second goes in (1 record is under
        // the bound), the third must wait.
        assert!(hand_on(record(2000), &tx, &stats, &stop, limit));
        assert!(hand_on(record(2000), &tx, &stats, &stop, limit));
        let sender = std::thread::spawn({
            let (tx, stats, stop) = (tx.clone(), stats.clone(), stop.clone());
            move || hand_on(record(2000), &tx, &stats, &stop, limit)
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(rx.len(), 2, "the third record waits for room");
        let first = rx.try_recv().unwrap();
        stats.taken(&first);
        assert!(sender.join().unwrap());
        assert_eq!(rx.len(), 2, "taking one made room for the third");
        // A waiting reader gives up when it is told to stop.
        let full = record(5000);
        stats
            .queued_bytes
            .fetch_add(ReaderStats::weight(&full), Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        assert!(!hand_on(record(10), &tx, &stats, &stop, limit));
    }
}
