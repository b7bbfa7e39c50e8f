//! The recorder with real processes: two producer processes and millions of events, and
//! a recording process killed with SIGKILL mid-write.

mod store_util;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shmbus::store::{
    list_segments, Fsync, Recorder, RecorderConfig, SegmentReader, StorageKind, UringStorage,
};
use store_util::*;

fn spawn_role(test: &str, role: &str, d: &Dirs) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("STORE_TEST_ROLE", role)
        .env("STORE_TEST_BUS", &d.bus)
        .env("STORE_TEST_STORE", &d.store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn wait_child(mut c: Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st;
        }
        if t0.elapsed() > limit {
            let _ = c.kill();
            let _ = c.wait();
            panic!("child {} did not finish within {limit:?}", c.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn role() -> Option<String> {
    std::env::var("STORE_TEST_ROLE").ok()
}

/// A producer process: publish `per` events as producer `id`.
fn producer(id: u32, per: u64) {
    let d = Dirs::from_env();
    let topic = d.bus().topic("t").open().unwrap();
    let mut p = topic.publisher().unwrap();
    for seq in 0..per {
        p.send_bytes(1, &payload(id, seq)).unwrap();
    }
}

/// io_uring wherever it can be set up, even where the default would pick `pwrite`
/// (ext4): these are the tests of the recorder's io_uring path.
fn recorder_config() -> RecorderConfig {
    RecorderConfig {
        segment_size: 16 << 20,
        fsync: Fsync::Never,
        storage: StorageKind::IoUring,
        ..Default::default()
    }
}

const BIG: &str = "two_producer_processes_two_million_events_persisted_once_in_order";
const BIG_PER: u64 = 1_000_000;

#[test]
fn two_producer_processes_two_million_events_persisted_once_in_order() {
    if let Some(r) = role() {
        let id = r.strip_prefix("pub:").unwrap().parse().unwrap();
        return producer(id, BIG_PER);
    }
    let d = Dirs::new("big");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 22)
        .open_or_create()
        .unwrap();
    let t0 = Instant::now();
    let rec = Recorder::spawn(&topic, &d.store, recorder_config()).unwrap();
    let kids: Vec<_> = (0..2)
        .map(|i| spawn_role(BIG, &format!("pub:{i}"), &d))
        .collect();
    for k in kids {
        assert!(wait_child(k, Duration::from_secs(300)).success());
    }
    let tail = topic.tail();
    assert!(
        rec.wait_persisted(tail, Duration::from_secs(120)),
        "persisted {} of {tail}",
        rec.persisted()
    );
    let stats = rec.stop().unwrap();
    let recorded = t0.elapsed();
    if UringStorage::new(8).is_ok() {
        assert_eq!(stats.storage, "io_uring");
    }
    assert_eq!(stats.records, 2 * BIG_PER);
    assert!(
        stats.segments >= 5,
        "only {} segments: expected several rollovers",
        stats.segments
    );
    let recs = read_store(&d.topic_dir("t"));
    check_exactly_once(&recs, 2, BIG_PER);
    assert_eq!(topic.stats().gaps, 0);
    println!(
        "{} events in {} segments, recorded in {recorded:?} ({}), read back and verified in {:?}",
        recs.len(),
        stats.segments,
        stats.storage,
        t0.elapsed() - recorded
    );
}

const KILL: &str = "sigkill_recording_process_mid_write_then_restart_recovers_exactly_once";
const KILL_TOTAL: u64 = 400_000;

#[test]
fn sigkill_recording_process_mid_write_then_restart_recovers_exactly_once() {
    if role().is_some() {
        // The recording process: record until killed.
        let d = Dirs::from_env();
        let topic = d.bus().topic("t").open().unwrap();
        let _rec = Recorder::spawn(
            &topic,
            &d.store,
            RecorderConfig {
                segment_size: 1 << 20,
                ..recorder_config()
            },
        )
        .unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let d = Dirs::new("kill");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 20)
        .open_or_create()
        .unwrap();
    let child = spawn_role(KILL, "rec", &d);
    assert!(
        wait_until(Duration::from_secs(30), || topic
            .subscribers()
            .iter()
            .any(|s| s.name.as_deref() == Some("shmbus-recorder") && s.alive)),
        "the recording process did not attach"
    );
    let t2 = topic.clone();
    let publisher = std::thread::spawn(move || {
        let mut p = t2.publisher().unwrap();
        for seq in 0..KILL_TOTAL {
            p.send_bytes(1, &payload(0, seq)).unwrap();
        }
    });
    // Kill it while it writes: once it has persisted a good part, publishing goes on.
    let recorder_pos = || {
        topic
            .subscribers()
            .iter()
            .find(|s| s.name.as_deref() == Some("shmbus-recorder"))
            .map(|s| s.position)
            .unwrap_or(0)
    };
    assert!(wait_until(Duration::from_secs(60), || recorder_pos()
        > KILL_TOTAL * 64 / 3));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let st = wait_child(child, Duration::from_secs(10));
    assert!(!st.success());
    let killed_at = recorder_pos();
    // Restart here: recovery, then it resumes at the right position.
    let rec = Recorder::spawn(
        &topic,
        &d.store,
        RecorderConfig {
            segment_size: 1 << 20,
            ..recorder_config()
        },
    )
    .unwrap();
    let report = rec.recovery();
    println!("recovery after SIGKILL at position {killed_at}: {report}");
    // It continues the killed recorder's tail segment, unless the kill came right
    // after a rollover: then that segment held no records and recovery removed it.
    assert!(
        report.continued.is_some()
            || report
                .removed
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "seg")),
        "the restarted recorder should continue the killed recorder's tail segment: {report}"
    );
    assert!(report.end_position.unwrap() >= killed_at);
    publisher.join().unwrap();
    let tail = topic.tail();
    assert!(rec.wait_persisted(tail, Duration::from_secs(60)));
    rec.stop().unwrap();
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, KILL_TOTAL);
}

const CONT: &str = "killed_recorders_continue_one_segment_until_its_roll_size";
const CONT_ROUND: u64 = 4000; // 64-byte records: 256 KiB a round
const CONT_SEG: u64 = 1 << 20;

fn continue_config() -> RecorderConfig {
    RecorderConfig {
        segment_size: CONT_SEG,
        write_size: 16 << 10,
        ..recorder_config()
    }
}

#[test]
fn killed_recorders_continue_one_segment_until_its_roll_size() {
    if role().is_some() {
        let d = Dirs::from_env();
        let topic = d.bus().topic("t").open().unwrap();
        let _rec = Recorder::spawn(&topic, &d.store, continue_config()).unwrap();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let d = Dirs::new("continue");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 20)
        .open_or_create()
        .unwrap();
    let dir = d.topic_dir("t");
    let recorder_pos = || {
        topic
            .subscribers()
            .iter()
            .find(|s| s.name.as_deref() == Some("shmbus-recorder"))
            .map(|s| s.position)
            .unwrap_or(0)
    };
    let mut publisher = topic.publisher().unwrap();
    let mut seq = 0;
    // Five rounds of 256 KiB, each recorded by a new process killed mid-way: the
    // segment rolls over once, after 1 MiB, not at every restart.
    for round in 0..5u64 {
        let child = spawn_role(CONT, "rec", &d);
        assert!(
            wait_until(Duration::from_secs(30), || topic
                .subscribers()
                .iter()
                .any(|s| s.name.as_deref() == Some("shmbus-recorder") && s.alive)),
            "the recording process did not attach"
        );
        let start = topic.tail();
        for _ in 0..CONT_ROUND {
            publisher.send_bytes(1, &payload(0, seq)).unwrap();
            seq += 1;
        }
        // Kill it once it has persisted part of the round (some writes may be in flight).
        assert!(wait_until(Duration::from_secs(60), || recorder_pos()
            > start + CONT_ROUND * 64 / 2));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert!(!wait_child(child, Duration::from_secs(10)).success());
        // 16,000 records (rounds 0-3) fit in one segment; past half of round 4 the
        // persisted records (over 18,000) do not.
        let segs = list_segments(&dir).unwrap();
        let expect = if round < 4 { 1 } else { 2 };
        assert_eq!(
            segs.len(),
            expect,
            "round {round}: a restart opened a new segment, or none rolled over: {segs:?}"
        );
    }
    // A last recorder here: it continues the tail, records the rest, seals on stop.
    let rec = Recorder::spawn(&topic, &d.store, continue_config()).unwrap();
    assert!(rec.recovery().continued.is_some(), "{}", rec.recovery());
    assert!(rec.wait_persisted(topic.tail(), Duration::from_secs(60)));
    rec.stop().unwrap();
    let segs = list_segments(&dir).unwrap();
    assert_eq!(segs.len(), 2, "{segs:?}");
    // The first segment was filled up to its roll size before it was sealed.
    let first = SegmentReader::open(&segs[0].path).unwrap();
    assert!(first.sealed());
    assert!(
        first.summary().data_end + 64 + 200 > CONT_SEG - 64,
        "first segment sealed at {} bytes",
        first.summary().data_end
    );
    check_exactly_once(&read_store(&dir), 1, seq);
}

const NAMED: &str = "named_subscriber_killed_and_lapped_resumes_from_the_store_exactly_once";
const NAMED_TOTAL: u64 = 150_000;
const FILL: u64 = 3000;

/// One line per delivered record: position, producer, sequence, from disk.
fn read_lines(path: &std::path::Path) -> Vec<(u64, u32, u64, bool)> {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    s.lines()
        .filter(|l| l.ends_with(';'))
        .map(|l| {
            let v: Vec<u64> = l
                .trim_end_matches(';')
                .split(' ')
                .map(|x| x.parse().unwrap())
                .collect();
            (v[0], v[1] as u32, v[2], v[3] == 1)
        })
        .collect()
}

#[test]
fn named_subscriber_killed_and_lapped_resumes_from_the_store_exactly_once() {
    use shmbus::store::{Replay, ReplayStart};
    use std::io::Write as _;
    if let Some(r) = role() {
        let d = Dirs::from_env();
        if let Some(id) = r.strip_prefix("pub:") {
            return producer(id.parse().unwrap(), NAMED_TOTAL);
        }
        // The reader: a named replay that logs every record it gets, then releases it.
        let topic = d.bus().topic("t").open().unwrap();
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(d.store.join("reader.out"))
            .unwrap();
        let mut r =
            Replay::<shmbus::Raw>::named(&topic, &d.store, "reader", ReplayStart::Position(0))
                .unwrap();
        loop {
            let ev = r
                .next_timeout(Duration::from_secs(60))
                .unwrap()
                .expect("no record within 60 s");
            let (p, q) = decode(ev.bytes());
            let line = format!("{} {p} {q} {};\n", ev.position(), u8::from(ev.from_disk()));
            out.write_all(line.as_bytes()).unwrap();
            if p == 2 {
                r.commit().unwrap();
                return;
            }
        }
    }
    let d = Dirs::new("named");
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .consumer_timeout(Duration::from_secs(3))
        .open_or_create()
        .unwrap();
    let rec = Recorder::spawn(
        &topic,
        &d.store,
        RecorderConfig {
            segment_size: 256 << 10,
            write_size: 16 << 10,
            ..recorder_config()
        },
    )
    .unwrap();
    let out = d.store.join("reader.out");
    let committed = || {
        topic
            .subscribers()
            .iter()
            .find(|s| s.name.as_deref() == Some("reader"))
            .map(|s| s.position)
            .unwrap()
    };
    let producer = spawn_role(NAMED, "pub:0", &d);
    let mut reader = spawn_role(NAMED, "reader", &d);
    let mut filler = topic.publisher().unwrap();
    let mut fill_seq = 0;
    let mut restarts = Vec::new();
    for kill_at in [20_000, 80_000] {
        assert!(
            wait_until(Duration::from_secs(120), || read_lines(&out).len()
                >= kill_at),
            "the reader got only {} records",
            read_lines(&out).len()
        );
        // SAFETY: signalling our own child.
        unsafe { libc::kill(reader.id() as libc::pid_t, libc::SIGKILL) };
        assert!(!wait_child(reader, Duration::from_secs(10)).success());
        // Publishing goes on (the dead reader is evicted) and laps its position.
        let at = committed();
        for _ in 0..FILL {
            filler.send_bytes(1, &payload(1, fill_seq)).unwrap();
            fill_seq += 1;
        }
        assert!(
            topic.earliest() > at,
            "the ring still holds the reader's position {at}"
        );
        assert_eq!(committed(), at, "the dead reader's position moved");
        // What it received but had not released yet, it gets again.
        let kept: Vec<_> = read_lines(&out).into_iter().filter(|l| l.0 < at).collect();
        let text: String = kept
            .iter()
            .map(|(pos, p, q, disk)| format!("{pos} {p} {q} {};\n", u8::from(*disk)))
            .collect();
        std::fs::write(&out, text).unwrap();
        restarts.push((kept.len(), at));
        reader = spawn_role(NAMED, "reader", &d);
    }
    assert!(wait_child(producer, Duration::from_secs(300)).success());
    // Once the restarted reader has read the disk it attaches its name to the ring:
    // the last record reaches it live.
    assert!(
        wait_until(Duration::from_secs(120), || topic
            .subscribers()
            .iter()
            .any(|s| s.name.as_deref() == Some("reader") && s.alive)),
        "the restarted reader never joined the live ring"
    );
    filler.send_bytes(1, &payload(2, 0)).unwrap();
    assert!(wait_child(reader, Duration::from_secs(300)).success());
    let lines = read_lines(&out);
    // Every record once, in log order: no gap, no duplicate.
    let mut next = [0u64; 3];
    for w in lines.windows(2) {
        assert!(w[1].0 > w[0].0, "positions must increase: {:?}", w);
    }
    for (i, &(pos, p, q, _)) in lines.iter().enumerate() {
        assert_eq!(
            q,
            next[p as usize],
            "producer {p} at {pos} (line {i}, restarts {restarts:?}): {:?}",
            &lines[i.saturating_sub(3)..(i + 3).min(lines.len())]
        );
        next[p as usize] += 1;
    }
    assert_eq!(next, [NAMED_TOTAL, fill_seq, 1]);
    // Each restarted reader started on disk, exactly at its durable position.
    for (i, at) in restarts {
        let (pos, _, _, disk) = lines[i];
        assert!(
            disk,
            "record {i} after a restart was not read from the store"
        );
        assert!(pos >= at && lines[i - 1].0 < at);
    }
    let last = lines.last().unwrap();
    assert!(
        last.1 == 2 && !last.3,
        "the last record did not come live: {last:?}"
    );
    rec.stop().unwrap();
}

/// Voluntary context switches of this process so far.
fn voluntary_switches() -> i64 {
    // SAFETY: getrusage writes only into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_nvcsw
}

#[test]
fn idle_recorder_sleeps_on_the_futex_and_still_records_the_next_event() {
    const TEST: &str = "idle_recorder_sleeps_on_the_futex_and_still_records_the_next_event";
    if role().is_some() {
        // A process with nothing but a recorder: count its wake-ups while idle.
        let d = Dirs::from_env();
        let topic = d.bus().topic("t").open().unwrap();
        let rec = Recorder::spawn(&topic, &d.store, recorder_config()).unwrap();
        let mut p = topic.publisher().unwrap();
        let first = p.send_bytes(1, b"before").unwrap();
        assert!(rec.wait_persisted(first + 64, Duration::from_secs(30)));
        // Past the busy-looking phase (about 10 ms), then two idle seconds.
        std::thread::sleep(Duration::from_millis(300));
        let before = voluntary_switches();
        std::thread::sleep(Duration::from_secs(2));
        let switches = voluntary_switches() - before;
        // Blocking on the futex with a 100 ms timeout: about 20 wake-ups. Polling
        // (sleeps of 1 ms or less) would be 2,000 or more.
        assert!(switches < 200, "idle recorder woke {switches} times in 2 s");
        let last = p.send_bytes(1, b"after").unwrap();
        assert!(
            rec.wait_persisted(last + 64, Duration::from_secs(30)),
            "the event after the idle spell is recorded"
        );
        rec.stop().unwrap();
        return;
    }
    let d = Dirs::new("idle");
    d.bus()
        .topic("t")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let st = wait_child(spawn_role(TEST, "idle", &d), Duration::from_secs(60));
    assert!(st.success(), "the idle recorder process failed: {st:?}");
}
