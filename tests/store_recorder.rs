//! The recorder's syncs: sealed segments are synced by a background thread while the
//! recorder writes on; failures reach the owner, are retried, stall the recorder only
//! after a bound, and are given up (and returned) only when it stops. And its writes: a
//! recorder that keeps up with a steady publisher batches what arrives meanwhile
//! instead of chasing it record by record.

mod store_util;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shmbus::store::storage::{Completion, Write};
use shmbus::store::{
    list_segments, FaultControl, FaultStorage, Fsync, PwriteStorage, Recorder, RecorderConfig,
    RecorderHandle, Storage, StoreError,
};
use store_util::*;

/// Small segments (about 2,000 records), syncs only when a segment is sealed (the
/// interval is never reached).
fn config() -> RecorderConfig {
    RecorderConfig {
        segment_size: 128 << 10,
        write_size: 16 << 10,
        fsync: Fsync::Interval(Duration::from_secs(3600)),
        retry_interval: Duration::from_millis(5),
        ..Default::default()
    }
}

/// A topic whose ring holds 4,096 records.
fn topic(d: &Dirs) -> shmbus::Topic {
    d.bus()
        .topic("t")
        .capacity(1 << 18)
        .open_or_create()
        .unwrap()
}

fn publish(topic: &shmbus::Topic, range: std::ops::Range<u64>) -> u64 {
    let mut publisher = topic.publisher().unwrap();
    let mut end = 0;
    for seq in range {
        end = publisher.send_bytes(1, &payload(0, seq)).unwrap() + 64;
    }
    end
}

fn spawn(
    d: &Dirs,
    topic: &shmbus::Topic,
    cfg: RecorderConfig,
) -> (RecorderHandle, Arc<FaultControl>) {
    let ctl = Arc::new(FaultControl::default());
    let storage = Box::new(FaultStorage::new(ctl.clone()));
    (
        Recorder::spawn_with(topic, &d.store, cfg, storage).unwrap(),
        ctl,
    )
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

/// The segments of `dir`, canonical paths.
fn segments(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .unwrap()
        .iter()
        .map(|s| canonical(&s.path))
        .collect()
}

fn sync_errors(errors: &[StoreError]) -> Vec<(PathBuf, &'static str)> {
    errors
        .iter()
        .filter_map(|e| match e {
            StoreError::Io { path, op, source } if source.raw_os_error() == Some(libc::EIO) => {
                Some((canonical(path), *op))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_failing_sync_of_a_sealed_segment_is_reported_and_retried_while_recording_goes_on() {
    let d = Dirs::new("sync-fail");
    let topic = topic(&d);
    let (rec, ctl) = spawn(&d, &topic, config());
    let dir = d.topic_dir("t");
    let end = publish(&topic, 0..100);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    // The first segment's name is synced.
    assert!(wait_until(Duration::from_secs(10), || !ctl
        .synced()
        .is_empty()));
    ctl.sync_fail.store(true, Ordering::SeqCst);
    let synced_before = ctl.synced().len();

    // About one and a half segments: the first is sealed, its sync fails, and the
    // recorder records the second meanwhile.
    let end = publish(&topic, 100..3000);
    assert!(
        rec.wait_persisted(end, Duration::from_secs(30)),
        "the recorder did not go on while the sealed segment's sync failed"
    );
    let segs = segments(&dir);
    assert_eq!(segs.len(), 2, "{segs:?}");
    assert!(wait_until(Duration::from_secs(10), || rec.stats().errors > 0));
    let errors = rec.take_errors();
    let failed = sync_errors(&errors);
    assert!(
        failed.contains(&(segs[0].clone(), "sync sealed segment")),
        "expected the sealed segment's path among {errors:?}"
    );
    assert_eq!(ctl.synced().len(), synced_before, "{:?}", ctl.synced());

    // The sync keeps failing: at most two sealed segments wait for their syncs; the
    // recorder waits before it hands over a third (the ring holds the rest).
    let publisher = {
        let topic = topic.clone();
        std::thread::spawn(move || publish(&topic, 3000..12000))
    };
    assert!(wait_until(Duration::from_secs(10), || segments(&dir).len() >= 3));
    // It fills the third segment, then stops: nothing more persisted for 100 ms.
    let mut stalled = rec.persisted();
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::thread::sleep(Duration::from_millis(100));
            let now = rec.persisted();
            std::mem::replace(&mut stalled, now) == now
        }),
        "the recorder went on recording while two sealed segments waited for their syncs"
    );
    assert_eq!(segments(&dir).len(), 3, "sealed past the bound");

    // The disk recovers: the retried syncs succeed, in order, and recording resumes.
    ctl.sync_fail.store(false, Ordering::SeqCst);
    let end = publisher.join().unwrap();
    assert!(stalled < end);
    assert!(
        rec.wait_persisted(end, Duration::from_secs(30)),
        "did not resume"
    );
    rec.stop().unwrap();
    let synced: Vec<PathBuf> = ctl.synced().iter().map(|p| canonical(p)).collect();
    let segs = segments(&dir);
    let seg_syncs: Vec<&PathBuf> = synced
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    for s in &segs {
        assert!(synced.contains(s), "{} never synced", s.display());
        assert!(
            synced.contains(&s.with_extension("idx")),
            "{} never synced",
            s.with_extension("idx").display()
        );
    }
    let mut sorted = seg_syncs.clone();
    sorted.sort();
    assert_eq!(seg_syncs, sorted, "sealed segments synced out of order");
    check_exactly_once(&read_store(&dir), 1, 12000);
}

#[test]
fn stop_waits_for_the_syncs_of_sealed_segments() {
    let d = Dirs::new("sync-slow");
    let topic = topic(&d);
    let (rec, ctl) = spawn(&d, &topic, config());
    // A slow disk: six segments, two files each, 50 ms a sync.
    ctl.sync_delay_ms.store(50, Ordering::SeqCst);
    let end = publish(&topic, 0..11000);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    let synced: Vec<PathBuf> = ctl.synced().iter().map(|p| canonical(p)).collect();
    let segs = segments(&d.topic_dir("t"));
    assert!(segs.len() >= 5, "{segs:?}");
    for s in &segs {
        for f in [s.clone(), s.with_extension("idx")] {
            assert!(
                synced.contains(&f),
                "{} not synced when stop returned",
                f.display()
            );
        }
    }
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, 11000);
}

#[test]
fn stop_gives_up_on_syncs_that_keep_failing_and_returns_the_error() {
    let d = Dirs::new("sync-dead");
    let topic = topic(&d);
    let (rec, ctl) = spawn(&d, &topic, config());
    ctl.sync_fail.store(true, Ordering::SeqCst);
    let end = publish(&topic, 0..3000);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    assert!(wait_until(Duration::from_secs(10), || rec.stats().errors > 0));
    let t0 = Instant::now();
    match rec.stop() {
        Err(StoreError::Io { path, source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EIO));
            assert!(
                path.starts_with(d.topic_dir("t")),
                "{} is not a segment file",
                path.display()
            );
        }
        other => panic!("expected the sync given up, got {other:?}"),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t0.elapsed()
    );
    // What was written is all there, only not known to be on stable storage.
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, 3000);
}

#[test]
fn every_batch_commits_only_what_is_synced() {
    let d = Dirs::new("sync-batch");
    let topic = topic(&d);
    let cfg = RecorderConfig {
        fsync: Fsync::EveryBatch,
        ..config()
    };
    let (rec, ctl) = spawn(&d, &topic, cfg);
    let first = publish(&topic, 0..100);
    assert!(rec.wait_persisted(first, Duration::from_secs(30)));
    // Past the first segment's end while syncs fail: nothing more is committed, and
    // the segment is not sealed (which would let a sync of the next one commit them).
    ctl.sync_fail.store(true, Ordering::SeqCst);
    let end = publish(&topic, 100..3000);
    assert!(wait_until(Duration::from_secs(10), || rec.stats().errors > 0));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(rec.persisted(), first, "committed without a sync");
    assert_eq!(
        segments(&d.topic_dir("t")).len(),
        1,
        "sealed without a sync"
    );
    let errors = rec.take_errors();
    assert!(!sync_errors(&errors).is_empty(), "{errors:?}");
    ctl.sync_fail.store(false, Ordering::SeqCst);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, 3000);
}

/// `pwrite`, with each write reported complete only `latency` after it was submitted
/// (as from a disk's queue), counting the writes.
struct Slow {
    inner: PwriteStorage,
    latency: Duration,
    queue: std::collections::VecDeque<(Instant, Completion)>,
    writes: Arc<std::sync::atomic::AtomicU64>,
}

impl Storage for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn submit(&mut self, w: Write) -> Result<(), Box<(Write, std::io::Error)>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.submit(w)?;
        let mut done = Vec::new();
        self.inner
            .reap(0, &mut done)
            .expect("pwrite reaps without failing");
        let due = Instant::now() + self.latency;
        self.queue.extend(done.into_iter().map(|c| (due, c)));
        Ok(())
    }
    fn reap(&mut self, min: usize, out: &mut Vec<Completion>) -> std::io::Result<()> {
        let mut got = 0;
        while let Some((due, _)) = self.queue.front() {
            let now = Instant::now();
            if *due > now {
                if got >= min {
                    break;
                }
                std::thread::sleep(*due - now);
            }
            let (_, c) = self.queue.pop_front().unwrap();
            out.push(c);
            got += 1;
        }
        Ok(())
    }
    fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

/// With writes that take a while, a recorder that looked again as soon as its write was
/// back would write the few records that came meanwhile, then wait again: one write
/// (and one look at the line the publisher writes next) every few records. It sleeps
/// instead, while an eighth of the ring would arrive (here clamped to 4 ms: about 200
/// records at one per 20 µs; the write size cuts that to 16 KiB, 256 records), and
/// writes what came.
#[test]
fn a_recorder_keeping_up_with_a_steady_publisher_writes_in_batches() {
    let d = Dirs::new("batches");
    // 4 MiB: a ring that a burst at 1 GB/s fills in no less than the longest sleep.
    let topic = d
        .bus()
        .topic("t")
        .capacity(4 << 20)
        .open_or_create()
        .unwrap();
    let writes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let storage = Box::new(Slow {
        inner: PwriteStorage::new(),
        latency: Duration::from_micros(200),
        queue: Default::default(),
        writes: writes.clone(),
    });
    // Segments that hold a largest record of this ring (a quarter of it).
    let cfg = RecorderConfig {
        segment_size: 2 << 20,
        ..config()
    };
    let rec = Recorder::spawn_with(&topic, &d.store, cfg, storage).unwrap();
    let n = 5000u64;
    let mut publisher = topic.publisher().unwrap();
    let (gap, t0) = (Duration::from_micros(20), Instant::now());
    let mut end = 0;
    for seq in 0..n {
        let due = t0 + gap * seq as u32;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        end = publisher.send_bytes(1, &payload(0, seq)).unwrap() + 64;
    }
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    let w = writes.load(Ordering::Relaxed);
    rec.stop().unwrap();
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, n);
    // Chasing: a data and an index write per ~10 records (about 1,000 writes). Sleeping:
    // per ~200 (about 50).
    assert!(w < n / 20, "{w} writes for {n} records");
}
