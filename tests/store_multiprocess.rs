//! The recorder with real processes: two producer processes and millions of events, and
//! a recording process killed with SIGKILL mid-write.

mod store_util;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shmbus::store::{Fsync, Recorder, RecorderConfig};
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

fn recorder_config() -> RecorderConfig {
    RecorderConfig {
        segment_size: 16 << 20,
        fsync: Fsync::Never,
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
    assert!(
        report.continued.is_some(),
        "the restarted recorder should continue the killed recorder's tail segment"
    );
    assert!(report.end_position.unwrap() >= killed_at);
    publisher.join().unwrap();
    let tail = topic.tail();
    assert!(rec.wait_persisted(tail, Duration::from_secs(60)));
    rec.stop().unwrap();
    check_exactly_once(&read_store(&d.topic_dir("t")), 1, KILL_TOTAL);
}
