//! The store in one process: segments, rollover, index, seek, replay, faults, damage,
//! retention, the recorder lock.

mod store_util;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use shmbus::store::{
    buffered_writes_nowait, list_segments, recover_topic, verify_topic, FaultControl, FaultStorage,
    Fsync, PwriteStorage, Recorder, RecorderConfig, Replay, ReplayStart, Retention, SegmentReader,
    StorageKind, StoreError, UringStorage,
};
use shmbus::Start;
use store_util::*;

fn config(segment_size: u64) -> RecorderConfig {
    RecorderConfig {
        segment_size,
        write_size: 16 << 10,
        fsync: Fsync::Never,
        ..Default::default()
    }
}

/// Publish `n` events of producer `p`; returns the position after the last one.
fn publish(topic: &shmbus::Topic, p: u32, range: std::ops::Range<u64>) -> u64 {
    let mut publisher = topic.publisher().unwrap();
    let mut end = 0;
    for seq in range {
        end = publisher.send_bytes(1, &payload(p, seq)).unwrap() + 64;
    }
    end
}

/// Publish events `range` of producer 0, wait until `rec` has persisted them, stop it,
/// and check that topic `t`'s store holds producer 0's events `0..range.end` exactly once.
fn persist_and_check(
    rec: shmbus::store::RecorderHandle,
    topic: &shmbus::Topic,
    d: &Dirs,
    range: std::ops::Range<u64>,
) {
    let total = range.end;
    let end = publish(topic, 0, range);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, total);
}

#[test]
fn segments_roll_over_with_footers_indexes_and_checksums() {
    let d = Dirs::new("roll");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let rec = Recorder::spawn(&topic, &d.store, config(64 << 10)).unwrap();
    let end = publish(&topic, 0, 0..20_000);
    assert!(
        rec.wait_persisted(end, Duration::from_secs(30)),
        "persisted {} of {end}",
        rec.persisted()
    );
    let stats = rec.stop().unwrap();
    assert_eq!(stats.records, 20_000);
    assert!(
        stats.segments >= 15,
        "expected many rollovers, got {} segments",
        stats.segments
    );
    let recs = read_store(&d.topic_dir("t"));
    check_exactly_once(&recs, 1, 20_000);
    for s in list_segments(&d.topic_dir("t")).unwrap() {
        let r = SegmentReader::open(&s.path).unwrap();
        assert!(r.sealed(), "{} not sealed after stop", s.path.display());
        assert!(
            !r.index_rebuilt(),
            "{} index was not usable",
            s.path.display()
        );
        assert!(s.len <= 64 << 10);
        assert_eq!(r.base(), r.summary().first_pos);
        assert!(r.index().len() > 1);
    }
    for c in verify_topic(&d.topic_dir("t")).unwrap() {
        assert!(c.error.is_none() && c.sealed && !c.index_damaged, "{c:?}");
    }
    // A second run continues after the first without duplicates.
    let rec = Recorder::spawn(&topic, &d.store, config(64 << 10)).unwrap();
    assert!(rec.recovery().clean(), "{}", rec.recovery());
    persist_and_check(rec, &topic, &d, 20_000..25_000);
}

#[test]
fn second_recorder_for_the_same_topic_and_store_is_refused() {
    let d = Dirs::new("lock");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let rec = Recorder::spawn(&topic, &d.store, config(1 << 20)).unwrap();
    match Recorder::spawn(&topic, &d.store, config(1 << 20)) {
        Err(StoreError::Locked { path }) => assert!(path.ends_with("t/.lock")),
        other => panic!("expected Locked, got {other:?}"),
    }
    rec.stop().unwrap();
    // Released on stop.
    Recorder::spawn(&topic, &d.store, config(1 << 20))
        .unwrap()
        .stop()
        .unwrap();
}

/// Each storage choice records through the backend it promises: `Auto` io_uring
/// where the store's file system takes buffered writes without blocking and `pwrite`
/// where it does not, `IoUring` io_uring wherever it can be set up.
#[test]
fn each_storage_choice_records_through_its_backend() {
    let uring = UringStorage::new(8).is_ok();
    for (i, kind) in [StorageKind::Auto, StorageKind::IoUring, StorageKind::Pwrite]
        .into_iter()
        .enumerate()
    {
        let d = Dirs::new(&format!("storage-{i}"));
        let topic = d
            .bus()
            .topic("t")
            .capacity(1 << 16)
            .open_or_create()
            .unwrap();
        let cfg = RecorderConfig {
            storage: kind,
            ..config(256 << 10)
        };
        let rec = Recorder::spawn(&topic, &d.store, cfg).unwrap();
        let nowait = buffered_writes_nowait(&d.topic_dir("t")).unwrap();
        let expected = match kind {
            StorageKind::Auto if uring && nowait => "io_uring",
            StorageKind::IoUring if uring => "io_uring",
            _ => "pwrite",
        };
        let name = rec.stats().storage;
        println!("{kind:?}: {name} (io_uring {uring}, non-blocking buffered writes {nowait})");
        assert_eq!(name, expected, "{kind:?}");
        persist_and_check(rec, &topic, &d, 0..5000);
    }
}

#[test]
fn the_write_probe_reports_a_missing_directory() {
    let d = Dirs::new("probe");
    let missing = d.store.join("not-here");
    let e = buffered_writes_nowait(&missing).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    // The probe leaves nothing behind (its file has no name).
    std::fs::create_dir_all(&d.store).unwrap();
    buffered_writes_nowait(&d.store).unwrap();
    assert_eq!(std::fs::read_dir(&d.store).unwrap().count(), 0);
}

#[test]
fn seek_by_position_and_by_time() {
    let d = Dirs::new("seek");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let rec = Recorder::spawn(&topic, &d.store, config(32 << 10)).unwrap();
    let mut publisher = topic.publisher().unwrap();
    let mut marks = Vec::new();
    let mut end = 0;
    for seq in 0..6000u64 {
        if seq % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(2));
            marks.push((seq, shmbus::now_ns()));
        }
        end = publisher.send_bytes(1, &payload(0, seq)).unwrap() + 64;
    }
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    let recs = read_store(&d.topic_dir("t"));
    // By time: the first record at or after each mark is the one published after it.
    for &(seq, t) in &marks {
        let mut r = Replay::open(&topic, &d.store, ReplayStart::Time(t)).unwrap();
        let ev = r.next_timeout(Duration::from_secs(1)).unwrap().unwrap();
        assert!(ev.from_disk());
        assert_eq!(decode(ev.bytes()), (0, seq), "seek to time of seq {seq}");
    }
    // By position: exact positions, and positions inside a record.
    for i in [0usize, 1, 777, 2999, 5999] {
        let pos = recs[i].0;
        for (start, want) in [(pos, i), (pos + 1, i + 1)] {
            if want >= recs.len() {
                continue;
            }
            let mut r = Replay::open(&topic, &d.store, ReplayStart::Position(start)).unwrap();
            let ev = r.next_timeout(Duration::from_secs(1)).unwrap().unwrap();
            assert_eq!(ev.position(), recs[want].0);
            assert_eq!(decode(ev.bytes()).1, want as u64);
        }
        // The segment reader agrees.
        let segs = list_segments(&d.topic_dir("t")).unwrap();
        let s = segs.iter().rev().find(|s| s.base <= pos).unwrap();
        let r = SegmentReader::open(&s.path).unwrap();
        let (off, p) = r.seek_position(pos).unwrap().unwrap();
        assert_eq!(p, pos);
        assert_eq!(r.record_at(off, 0).unwrap().unwrap().position, pos);
    }
}

#[test]
fn replay_from_disk_joins_live_under_concurrent_publishing() {
    let d = Dirs::new("replay");
    // A small ring: most of the history exists only on disk.
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 14)
        .open_or_create()
        .unwrap();
    let rec = Recorder::spawn(&topic, &d.store, config(64 << 10)).unwrap();
    const TOTAL: u64 = 60_000;
    let end = publish(&topic, 0, 0..10_000);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    let t2 = topic.clone();
    // Paced, so that cursors catch up with the disk and join while it publishes.
    let producer = std::thread::spawn(move || {
        let mut publisher = t2.publisher().unwrap();
        let mut end = 0;
        for seq in 10_000..TOTAL {
            end = publisher.send_bytes(1, &payload(0, seq)).unwrap() + 64;
            if seq % 200 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        end
    });
    let mut joined_mid_stream = 0;
    // Several cursors from different starts while the producer runs.
    for start_seq in [0u64, 4321, 9999] {
        let start = read_store(&d.topic_dir("t"))[start_seq as usize].0;
        let mut r = Replay::open(&topic, &d.store, ReplayStart::Position(start)).unwrap();
        let mut want = start_seq;
        let mut last_pos = None;
        while want < TOTAL {
            let ev = r
                .next_timeout(Duration::from_secs(30))
                .unwrap()
                .unwrap_or_else(|| panic!("stalled at seq {want}"));
            let (p, q) = decode(ev.bytes());
            assert_eq!(
                (p, q),
                (0, want),
                "gap or duplicate (from disk: {})",
                ev.from_disk()
            );
            if let Some(l) = last_pos {
                assert!(ev.position() > l);
            }
            last_pos = Some(ev.position());
            want += 1;
        }
        assert!(r.disk_records() > 0);
        if r.is_live() {
            joined_mid_stream += 1;
        }
    }
    assert!(
        joined_mid_stream > 0,
        "no cursor joined the ring while the producer ran"
    );
    let end = producer.join().unwrap();
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, TOTAL);
}

#[test]
fn enospc_and_eio_surface_as_errors_and_the_recorder_resumes() {
    let d = Dirs::new("fault");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let ctl = Arc::new(FaultControl::default());
    ctl.short_writes.store(true, Ordering::SeqCst);
    let storage = Box::new(FaultStorage::new(ctl.clone()));
    let cfg = RecorderConfig {
        retry_interval: Duration::from_millis(5),
        ..config(64 << 10)
    };
    let rec = Recorder::spawn_with(&topic, &d.store, cfg, storage).unwrap();
    let end = publish(&topic, 0, 0..1000);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    let persisted = rec.persisted();

    // Disk full: errors reach the owner, the position stays, the ring keeps the data.
    ctl.enospc.store(true, Ordering::SeqCst);
    let end = publish(&topic, 0, 1000..1500);
    assert!(wait_until(Duration::from_secs(10), || rec.stats().errors > 0));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        rec.persisted(),
        persisted,
        "position advanced while writes failed"
    );
    let sub_pos = topic
        .subscribers()
        .into_iter()
        .find(|s| s.name.as_deref() == Some("shmbus-recorder"))
        .unwrap()
        .position;
    assert_eq!(
        sub_pos, persisted,
        "the ring position must not pass unpersisted data"
    );
    let errs = rec.take_errors();
    assert!(
        errs.iter().any(|e| e.raw_os_error() == Some(libc::ENOSPC)),
        "expected ENOSPC among {errs:?}"
    );
    // A subscriber can still read the unpersisted records from the ring.
    let mut check = topic
        .subscriber()
        .start(Start::Position(persisted))
        .open()
        .unwrap();
    assert!(check.try_recv_bytes().unwrap().is_some());
    drop(check);
    // Space returns, then an EIO burst.
    ctl.enospc.store(false, Ordering::SeqCst);
    assert!(
        rec.wait_persisted(end, Duration::from_secs(30)),
        "did not resume after ENOSPC"
    );
    ctl.eio.store(3, Ordering::SeqCst);
    let end = publish(&topic, 0, 1500..3000);
    assert!(
        rec.wait_persisted(end, Duration::from_secs(30)),
        "did not resume after EIO"
    );
    assert!(rec
        .take_errors()
        .iter()
        .any(|e| e.raw_os_error() == Some(libc::EIO)));
    rec.stop().unwrap();
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, 3000);
}

#[test]
fn injected_crash_mid_write_then_recovery_keeps_every_committed_record() {
    let d = Dirs::new("crash");
    // Room for everything published while the storage is down (the recorder holds it).
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 20)
        .open_or_create()
        .unwrap();
    for crash_at in [10_000u64, 70_001, 150_003] {
        let ctl = Arc::new(FaultControl::default());
        ctl.crash_after.store(crash_at, Ordering::SeqCst);
        let cfg = RecorderConfig {
            retry_interval: Duration::from_millis(5),
            ..config(300 << 10)
        };
        let rec = Recorder::spawn_with(
            &topic,
            &d.store,
            cfg.clone(),
            Box::new(FaultStorage::new(ctl.clone())),
        )
        .unwrap();
        let before = rec.persisted();
        let mut publisher = topic.publisher().unwrap();
        // Publish until the storage "crashes"; the ring holds the rest.
        let mut seq = read_store(&d.topic_dir("t")).len() as u64;
        let target = seq + 4000;
        while seq < target {
            publisher.send_bytes(1, &payload(0, seq)).unwrap();
            seq += 1;
        }
        assert!(wait_until(Duration::from_secs(10), || ctl
            .crashed
            .load(Ordering::SeqCst)));
        let committed = rec.persisted();
        assert!(committed >= before);
        // The owner stops it; it gives up on the failing writes without committing.
        rec.stop().unwrap();
        // Restart on a healthy backend: recovery cuts the torn tail and resumes.
        let rec =
            Recorder::spawn_with(&topic, &d.store, cfg, Box::new(PwriteStorage::new())).unwrap();
        let report = format!("{}", rec.recovery());
        // The crashed tail is continued, or removed if nothing in it was committed.
        let removed_tail = rec
            .recovery()
            .removed
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "seg"));
        assert!(
            rec.recovery().continued.is_some() || removed_tail,
            "the restarted recorder should continue the unsealed tail: {report}"
        );
        let end = topic.tail();
        assert!(rec.wait_persisted(end, Duration::from_secs(30)), "{report}");
        rec.stop().unwrap();
        check_exactly_once(&read_store(&d.topic_dir("t")), 1, target);
    }
}

/// Write a few sealed segments plus an unsealed tail, then damage copies of them in
/// every way: nothing panics; errors name the file and offset; recovery repairs tails.
#[test]
fn truncated_bitflipped_and_zeroed_files_give_errors_or_repair_never_panic() {
    let d = Dirs::new("damage");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 14)
        .open_or_create()
        .unwrap();
    let rec = Recorder::spawn(&topic, &d.store, config(16 << 10)).unwrap();
    let end = publish(&topic, 0, 0..1000);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    let src = d.topic_dir("t");
    let segs = list_segments(&src).unwrap();
    assert!(segs.len() >= 3);
    let total = read_store(&src).len();
    let work = d.store.join("work");

    let fresh = |work: &std::path::Path| {
        let _ = std::fs::remove_dir_all(work);
        std::fs::create_dir_all(work).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), work.join(e.file_name())).unwrap();
        }
    };
    // Exercise every reader on a damaged directory; return what recovery said.
    let exercise = |work: &std::path::Path| -> Result<(), StoreError> {
        for s in list_segments(work).unwrap() {
            if let Ok(r) = SegmentReader::open(&s.path) {
                let _ = r.verify();
                for x in r.iter() {
                    if x.is_err() {
                        break;
                    }
                }
                let _ = r.seek_position(r.base() + 640);
                let _ = r.seek_time(0);
            }
        }
        let _ = verify_topic(work).unwrap();
        recover_topic(work, &[], false).map(|_| ())
    };

    let sizes: Vec<u64> = segs.iter().map(|s| s.len).collect();
    for (i, s) in segs.iter().enumerate() {
        let name = s.path.file_name().unwrap().to_owned();
        let idx = s.idx_path().file_name().unwrap().to_owned();
        let len = sizes[i];
        let offsets = [
            0u64,
            7,
            16,
            63,
            64,
            70,
            100,
            200,
            len / 2,
            len - 100,
            len - 20,
            len - 9,
            len - 1,
        ];
        for &off in &offsets {
            // Bit flip.
            fresh(&work);
            let p = work.join(&name);
            let mut b = std::fs::read(&p).unwrap();
            b[off as usize] ^= 0x10;
            std::fs::write(&p, &b).unwrap();
            let r = exercise(&work);
            if let Err(StoreError::Corrupt { path, .. }) = &r {
                assert_eq!(path, &p);
            }
            // Truncation.
            fresh(&work);
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(off).unwrap();
            drop(f);
            let _ = exercise(&work);
            // Zero fill from here for 100 bytes.
            fresh(&work);
            let mut b = std::fs::read(&p).unwrap();
            let e = (off as usize + 100).min(b.len());
            b[off as usize..e].fill(0);
            std::fs::write(&p, &b).unwrap();
            let _ = exercise(&work);
        }
        // Index damage: flipped, truncated, zeroed, missing -> rebuilt, same answers.
        for how in 0..4 {
            fresh(&work);
            let ip = work.join(&idx);
            let mut b = std::fs::read(&ip).unwrap();
            match how {
                0 => b[40] ^= 1,
                1 => b.truncate(b.len() - 5),
                2 => b.fill(0),
                _ => b.clear(),
            }
            if how == 3 {
                std::fs::remove_file(&ip).unwrap();
            } else {
                std::fs::write(&ip, &b).unwrap();
            }
            let r = SegmentReader::open(&work.join(&name)).unwrap();
            assert!(
                r.index_rebuilt(),
                "damage {how} to {} not noticed",
                ip.display()
            );
            assert_eq!(r.verify().unwrap(), r.summary().count);
            let rep = recover_topic(&work, &[], false).unwrap();
            assert!(rep.index_rebuilt.contains(&ip), "{rep}");
            assert!(!SegmentReader::open(&work.join(&name))
                .unwrap()
                .index_rebuilt());
            assert_eq!(read_store(&work).len(), total);
        }
    }

    // A bit flip inside a record of a middle segment: verification names file and the
    // offset of the checksummed run that holds it.
    fresh(&work);
    let mid = work.join(segs[1].path.file_name().unwrap());
    let flip = 64 + 64 * 3 + 40; // payload of the fourth record
    let run_at = {
        let r = SegmentReader::open(&mid).unwrap();
        let runs = r.index();
        runs[runs.partition_point(|e| e.offset <= flip) - 1].offset
    };
    let mut b = std::fs::read(&mid).unwrap();
    b[flip as usize] ^= 1;
    std::fs::write(&mid, &b).unwrap();
    let checks = verify_topic(&work).unwrap();
    match &checks[1].error {
        Some(StoreError::Corrupt { path, offset, what }) => {
            assert_eq!(path, &mid);
            assert_eq!(*offset, run_at, "{what}");
            assert!(what.contains("checksum"), "{what}");
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }

    // The last segment unsealed with a torn record: recovery keeps the valid prefix,
    // every run before the one holding the torn record.
    fresh(&work);
    let last = work.join(segs.last().unwrap().path.file_name().unwrap());
    let r = SegmentReader::open(&last).unwrap();
    let count = r.summary().count;
    let data_end = r.summary().data_end;
    let last_run = *r.index().last().unwrap();
    let in_last_run = r
        .iter()
        .filter(|x| x.as_ref().unwrap().offset >= last_run.offset)
        .count();
    drop(r);
    let mut b = std::fs::read(&last).unwrap();
    b.truncate(data_end as usize);
    b[data_end as usize - 10] ^= 0xff; // tear the last record
    b.resize(data_end as usize + 4096, 0); // preallocated zeros
    std::fs::write(&last, &b).unwrap();
    let rep = recover_topic(&work, &[], false).unwrap();
    assert_eq!(rep.truncated.len(), 1, "{rep}");
    assert_eq!(rep.truncated[0].1, last_run.offset);
    let r = SegmentReader::open(&last).unwrap();
    assert!(r.sealed());
    assert_eq!(r.summary().count, count - in_last_run as u64);
    assert_eq!(read_store(&work).len(), total - in_last_run);
}

#[test]
fn retention_deletes_oldest_segments_and_respects_named_subscribers() {
    let d = Dirs::new("retention");
    // Producers evict a subscriber that holds them up for 300 ms (it keeps its name
    // and position).
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 14)
        .consumer_timeout(Duration::from_millis(300))
        .open_or_create()
        .unwrap();
    let rec = Recorder::spawn(&topic, &d.store, config(16 << 10)).unwrap();
    // A named reader reads the first 600 records (a few segments), then goes away.
    let mut slow = topic
        .subscriber()
        .named("slow")
        .start(Start::Earliest)
        .open()
        .unwrap();
    let mut publisher = topic.publisher().unwrap();
    for seq in 0..600 {
        publisher.send_bytes(1, &payload(0, seq)).unwrap();
        slow.try_recv_bytes().unwrap().unwrap();
    }
    drop(publisher);
    slow.commit();
    let slow_pos = slow.position();
    drop(slow);
    let end = publish(&topic, 0, 600..3000);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    let dir = d.topic_dir("t");
    let before = list_segments(&dir).unwrap();
    assert!(before.len() >= 8);
    let total: u64 = before.iter().map(|s| s.len).sum();

    // Size limit, respecting "slow": only segments that end at or before its position.
    let policy = Retention {
        max_bytes: Some(total / 4),
        ..Default::default()
    };
    let rep = shmbus::store::apply_retention(&topic, &d.store, &policy).unwrap();
    assert!(!rep.deleted.is_empty());
    assert_eq!(rep.held_by.as_ref().map(|h| h.0.as_str()), Some("slow"));
    let after = list_segments(&dir).unwrap();
    assert!(
        after[0].base <= slow_pos,
        "deleted a segment 'slow' still needs"
    );
    for s in &rep.deleted {
        assert!(!s.exists() && !s.with_extension("idx").exists());
    }
    // Ignoring subscribers: down to the size limit; never the last segment.
    let policy = Retention {
        respect_subscribers: false,
        ..policy
    };
    shmbus::store::apply_retention(&topic, &d.store, &policy).unwrap();
    let after: Vec<_> = list_segments(&dir).unwrap();
    let size: u64 = after.iter().map(|s| s.len).sum();
    assert!(size <= total / 4 || after.len() == 1);
    assert_eq!(after.last().unwrap().base, before.last().unwrap().base);
    // Remaining records are the newest ones, contiguous.
    let recs = read_store(&dir);
    let first = recs[0].2;
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.2, first + i as u64);
    }
    assert_eq!(recs.last().unwrap().2, 2999);
    // By age: everything older than now except the last segment.
    let policy = Retention {
        max_age: Some(Duration::from_millis(1)),
        respect_subscribers: false,
        ..Default::default()
    };
    std::thread::sleep(Duration::from_millis(5));
    shmbus::store::apply_retention(&topic, &d.store, &policy).unwrap();
    assert_eq!(list_segments(&dir).unwrap().len(), 1);
}

#[test]
fn every_fsync_policy_records_everything() {
    let d = Dirs::new("fsync");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let mut total = 0;
    for fsync in [
        Fsync::EveryBatch,
        Fsync::Interval(Duration::from_millis(5)),
        Fsync::Never,
    ] {
        let cfg = RecorderConfig {
            fsync,
            ..config(64 << 10)
        };
        let rec = Recorder::spawn(&topic, &d.store, cfg).unwrap();
        let end = publish(&topic, 0, total..total + 3000);
        total += 3000;
        assert!(
            rec.wait_persisted(end, Duration::from_secs(30)),
            "{fsync:?}"
        );
        let stats = rec.stop().unwrap();
        assert_eq!(stats.records, 3000, "{fsync:?}");
        assert_eq!(stats.errors, 0, "{fsync:?}");
    }
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, total);
}

/// Producers evict a recorder whose writes are failing and overwrite the ring memory
/// its pending writes read from. When the storage comes back, those writes complete
/// with overwritten bytes: the recorder must not commit them, must cut the segment
/// back to its last commit, and (with `accept_loss`) go on after the loss, leaving a
/// store in which every run verifies.
#[test]
fn evicted_recorder_cuts_uncommitted_writes_back_to_its_last_commit() {
    let d = Dirs::new("evict");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 14)
        .consumer_timeout(Duration::from_millis(300))
        .open_or_create()
        .unwrap();
    let ctl = Arc::new(FaultControl::default());
    let cfg = RecorderConfig {
        retry_interval: Duration::from_millis(5),
        accept_loss: true,
        ..config(1 << 20)
    };
    let rec = Recorder::spawn_with(
        &topic,
        &d.store,
        cfg,
        Box::new(FaultStorage::new(ctl.clone())),
    )
    .unwrap();
    let end = publish(&topic, 0, 0..100);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    ctl.enospc.store(true, Ordering::SeqCst);
    // The recorder takes a batch it cannot write; the ring fills, the producer is
    // blocked by the recorder, evicts it after the timeout and laps its batch.
    let end2 = publish(&topic, 0, 100..3000);
    assert!(topic.stats().evictions > 0, "the recorder was not evicted");
    assert_eq!(
        rec.persisted(),
        end,
        "committed while its writes were failing"
    );
    ctl.enospc.store(false, Ordering::SeqCst);
    assert!(
        rec.wait_persisted(end2, Duration::from_secs(30)),
        "the recorder did not resume after its eviction"
    );
    let errors = rec.take_errors();
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, StoreError::Recv(shmbus::RecvError::Evicted))),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, StoreError::Discontinuity { .. })),
        "{errors:?}"
    );
    rec.stop().unwrap();
    // Every run verifies (read_store checks them), the first 100 records are there,
    // then one jump (the records lost while it was evicted), then the rest in order.
    let recs = read_store(&d.topic_dir("t"));
    let seqs: Vec<u64> = recs.iter().map(|r| r.2).collect();
    assert_eq!(&seqs[..100], &(0..100).collect::<Vec<_>>()[..]);
    let resumed = seqs[100];
    assert!(resumed > 100, "nothing was lost?");
    assert_eq!(&seqs[100..], &(resumed..3000).collect::<Vec<_>>()[..]);
}

/// What a power failure can leave when a sealed segment was not synced (with
/// `Fsync::Never`, or while the recorder's sync thread had not got to it) and the
/// next segment exists: the sealed one without its footer on disk (still its
/// preallocated size), and possibly without its last pages. Recovery keeps what the
/// disk holds in order, and nothing after a hole.
#[test]
fn power_failure_before_a_sealed_segment_was_synced_recovers_a_prefix() {
    let d = Dirs::new("power");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 18)
        .open_or_create()
        .unwrap();
    let cfg = config(128 << 10);
    let seg_size = cfg.segment_size;
    let rec = Recorder::spawn(&topic, &d.store, cfg).unwrap();
    let end = publish(&topic, 0, 0..5000);
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    let src = d.topic_dir("t");
    let segs = list_segments(&src).unwrap();
    assert_eq!(segs.len(), 3);
    let work = d.store.join("work");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), work.join(e.file_name())).unwrap();
        }
    };
    let mid = work.join(segs[1].path.file_name().unwrap());
    let data_end = SegmentReader::open(&segs[1].path)
        .unwrap()
        .summary()
        .data_end;

    // Footer written, but the cut of the preallocated rest lost: nothing is missing.
    fresh();
    let f = std::fs::OpenOptions::new().write(true).open(&mid).unwrap();
    f.set_len(seg_size).unwrap();
    drop(f);
    let rep = recover_topic(&work, &[], false).unwrap();
    assert!(rep.removed.is_empty(), "{rep}");
    assert_eq!(rep.truncated.len(), 1, "{rep}");
    assert_eq!(rep.truncated[0].1, data_end, "{rep}");
    check_exactly_once(&read_store(&work), 1, 5000);

    // Its second half never reached the disk: cut there, and the last segment (which
    // no sync reached either) removed.
    fresh();
    let mut b = std::fs::read(&mid).unwrap();
    let hole = (data_end as usize / 2) & !4095;
    b[hole..].fill(0);
    b.resize(seg_size as usize, 0);
    std::fs::write(&mid, &b).unwrap();
    let rep = recover_topic(&work, &[], false).unwrap();
    let last = work.join(segs[2].path.file_name().unwrap());
    assert!(rep.removed.contains(&last), "{rep}");
    assert!(rep.removed.contains(&last.with_extension("idx")), "{rep}");
    assert_eq!(rep.truncated.len(), 1, "{rep}");
    assert!(rep.truncated[0].1 <= hole as u64, "{rep}");
    let seqs: Vec<u64> = read_store(&work).iter().map(|r| r.2).collect();
    assert!(!seqs.is_empty() && (seqs.len() as u64) < segs[2].base / 64);
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(list_segments(&work).unwrap().len(), 2);
    assert!(SegmentReader::open(&mid).unwrap().sealed());

    // A segment before the last whose footer is there but damaged still is an error.
    fresh();
    let mut b = std::fs::read(&mid).unwrap();
    b[data_end as usize / 2] ^= 0xff;
    let n = b.len();
    b[n - 20] ^= 0xff; // inside the footer (its checksum no longer matches)
    std::fs::write(&mid, &b).unwrap();
    match recover_topic(&work, &[], false) {
        Err(StoreError::Corrupt { path, .. }) => assert_eq!(path, mid),
        other => panic!("expected an error naming {}, got {other:?}", mid.display()),
    }
}
