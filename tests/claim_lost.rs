//! A producer's claim and a subscriber's unblocking agree on one outcome: either the
//! commit succeeds and the record arrives, or the commit fails with
//! `SendError::ClaimLost` and subscribers see a gap. Never a successful commit whose
//! record was silently turned into a gap.
//!
//! Real processes (re-spawned test binaries with a role, see `common`), including a
//! child created by `fork()` without `exec`.

mod common;

use std::time::{Duration, Instant};

use common::{read_until, role, spawn_role, wait_child, TempBus};
use shmbus::{Bus, SendError, Start};

/// Short, so the tests stall producers well past it without taking long.
const UNBLOCK: Duration = Duration::from_millis(200);

fn topic(bus: &Bus) -> shmbus::Topic<shmbus::Raw> {
    bus.topic("t")
        .capacity(1 << 16)
        .unblock_timeout(UNBLOCK)
        .open_or_create()
        .unwrap()
}

fn child_bus() -> Bus {
    Bus::open_dir(std::env::var("SHMBUS_TEST_DIR").unwrap()).unwrap()
}

/// Roles run in child processes.
fn child(role: String) {
    match role.as_str() {
        // Publish one record; print what the commit said.
        "publish" => {
            let t = topic(&child_bus());
            let mut p = t.publisher().unwrap();
            println!("READY");
            match p.send_bytes(7, b"stalled!") {
                Ok(pos) => println!("OK {pos}"),
                Err(SendError::ClaimLost { position }) => println!("LOST {position}"),
                Err(e) => println!("ERROR {e}"),
            }
        }
        // The scenario: open a subscriber, fork without exec; the child opens
        // a publisher, claims, stalls well past the unblock timeout, commits.
        "fork" => {
            let t = topic(&child_bus());
            let mut sub = t.subscriber().start(Start::Position(0)).open().unwrap();
            // SAFETY: this process is single-threaded here apart from the test
            // harness's main thread, which only waits for this test's result; the child
            // uses the library, sleeps and leaves with `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let code = {
                    let t = topic(&child_bus());
                    let mut p = t.publisher().unwrap();
                    let mut g = p.claim(8).unwrap();
                    g.payload().copy_from_slice(b"forked!!");
                    std::thread::sleep(UNBLOCK * 8);
                    match g.commit() {
                        Ok(_) => 0,
                        Err(SendError::ClaimLost { .. }) => 3,
                        Err(_) => 4,
                    }
                };
                // SAFETY: leaving the forked child without running the parent's
                // atexit handlers or the harness's destructors.
                unsafe { libc::_exit(code) };
            }
            let got = sub
                .recv_bytes_timeout(Duration::from_secs(20))
                .unwrap()
                .map(|e| e.bytes().to_vec());
            let mut status = 0;
            // SAFETY: waiting for our own child; `status` is writable.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(r, pid);
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
            println!(
                "CHILD {code} GOT {} GAPS {}",
                got.map_or("none".into(), |b| String::from_utf8_lossy(&b).into_owned()),
                sub.gaps().0
            );
        }
        r => panic!("unknown role {r}"),
    }
}

/// The rest of the first output line holding `tag`, from the tag on (the harness may
/// have printed its own text before it on the same line).
fn line_with(out: &str, tag: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.find(tag).map(|i| l[i..].trim_end().to_owned()))
}

/// Spawn a `publish` child with `env`, wait until it is stopped at its fault point,
/// and return it (the caller waits for it).
#[allow(clippy::zombie_processes)]
fn stopped_publisher(test: &str, tb: &TempBus, env: &[(&str, String)]) -> std::process::Child {
    let mut c = spawn_role(test, "publish", &tb.dir, env);
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    assert!(read_until(&mut out, "READY"));
    c.stdout = Some(out.into_inner());
    // Stopped (state T) at the fault point, within a generous bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", c.id())).unwrap();
        if s[s.rfind(')').unwrap() + 2..].starts_with('T') {
            break c;
        }
        assert!(Instant::now() < deadline, "child never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sigcont(c: &std::process::Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGCONT) };
}

/// A producer judged dead while it runs (its identity is not resolvable: as in
/// another PID namespace), stalled at `point` past the unblock timeout: its claim
/// becomes a gap, and its commit then fails with `ClaimLost`; the record never
/// arrives, and nothing after the gap is disturbed.
fn misjudged_stall(test: &str, point: &str) {
    let tb = TempBus::new("lost");
    let t = topic(&tb.bus());
    let mut sub = t.subscriber().start(Start::Position(0)).open().unwrap();
    let c = stopped_publisher(
        test,
        &tb,
        &[
            ("SHMBUS_FAULT", point.into()),
            ("SHMBUS_FAULT_STOP", "1".into()),
            ("SHMBUS_FAULT_FOREIGN_IDENTITY", "1".into()),
        ],
    );
    // The subscriber turns the claim into a gap after the unblock timeout.
    assert!(sub.recv_bytes_timeout(UNBLOCK * 10).unwrap().is_none());
    assert_eq!(sub.gaps().0, 1, "the stalled claim became one gap");
    sigcont(&c);
    let (st, out) = wait_child(c, Duration::from_secs(20));
    assert!(st.success(), "{out}");
    assert_eq!(line_with(&out, "LOST").as_deref(), Some("LOST 0"), "{out}");
    // Later records arrive after the gap, intact.
    let mut p = t.publisher().unwrap();
    let pos = p.send_bytes(1, b"after").unwrap();
    let e = sub
        .recv_bytes_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!((e.position(), e.bytes()), (pos, &b"after"[..]));
    assert_eq!(sub.gaps().0, 1);
}

#[test]
fn producer_judged_dead_after_its_claim_gets_claim_lost_not_ok() {
    const TEST: &str = "producer_judged_dead_after_its_claim_gets_claim_lost_not_ok";
    if let Some(r) = role() {
        return child(r);
    }
    misjudged_stall(TEST, "after_claim");
}

#[test]
fn producer_judged_dead_before_its_commit_word_gets_claim_lost_not_ok() {
    const TEST: &str = "producer_judged_dead_before_its_commit_word_gets_claim_lost_not_ok";
    if let Some(r) = role() {
        return child(r);
    }
    // Stopped after writing its payload and header, just before the commit word: the
    // gap's header may carry its length, which is harmless (see `ring::protocol`).
    misjudged_stall(TEST, "before_commit");
}

/// A live producer stopped (SIGSTOP) between claim and commit for longer than the
/// unblock timeout keeps its claim: it is alive, and a gap would let the next lap
/// reuse bytes it may still write. Continued, it commits and the record arrives.
#[test]
fn stopped_live_producer_keeps_its_claim_and_its_record_arrives() {
    const TEST: &str = "stopped_live_producer_keeps_its_claim_and_its_record_arrives";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("stopped");
    let t = topic(&tb.bus());
    let mut sub = t.subscriber().start(Start::Position(0)).open().unwrap();
    let c = stopped_publisher(
        TEST,
        &tb,
        &[
            ("SHMBUS_FAULT", "after_claim".into()),
            ("SHMBUS_FAULT_STOP", "1".into()),
        ],
    );
    assert!(sub.recv_bytes_timeout(UNBLOCK * 5).unwrap().is_none());
    assert_eq!(sub.gaps().0, 0, "a live producer's claim is not a gap");
    sigcont(&c);
    let e = sub
        .recv_bytes_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!((e.position(), e.bytes()), (0, &b"stalled!"[..]));
    let (st, out) = wait_child(c, Duration::from_secs(20));
    assert!(st.success(), "{out}");
    assert_eq!(line_with(&out, "OK").as_deref(), Some("OK 0"), "{out}");
}

/// The scenario: subscriber opened, then `fork()` without `exec`; the child
/// opens a publisher, claims, stalls well past the unblock timeout and commits. The
/// child is alive, so its claim is not a gap: the commit succeeds and the record
/// arrives (and were it ever judged dead, the commit would fail, never say OK).
#[test]
fn forked_child_without_exec_is_alive_and_its_stalled_record_arrives() {
    const TEST: &str = "forked_child_without_exec_is_alive_and_its_stalled_record_arrives";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("fork");
    let c = spawn_role(TEST, "fork", &tb.dir, &[]);
    let (st, out) = wait_child(c, Duration::from_secs(60));
    assert!(st.success(), "{out}");
    assert_eq!(
        line_with(&out, "CHILD").as_deref(),
        Some("CHILD 0 GOT forked!! GAPS 0"),
        "{out}"
    );
}

/// An inspecting subscriber writes nothing but its own slot: at a claim a killed
/// producer abandoned it skips the bytes on its own (counted as a gap) instead of
/// writing the gap record, and reads on.
#[test]
fn inspecting_subscriber_skips_an_abandoned_claim_without_writing_a_gap() {
    const TEST: &str = "inspecting_subscriber_skips_an_abandoned_claim_without_writing_a_gap";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("inspect");
    let t = topic(&tb.bus());
    let mut sub = t
        .subscriber()
        .start(Start::Position(0))
        .inspect(true)
        .open()
        .unwrap();
    let c = spawn_role(
        TEST,
        "publish",
        &tb.dir,
        &[("SHMBUS_FAULT", "after_claim".into())],
    );
    let (st, _) = wait_child(c, Duration::from_secs(20));
    assert!(!st.success(), "the producer was to die after its claim");
    let mut p = t.publisher().unwrap();
    let pos = p.send_bytes(1, b"after").unwrap();
    assert!(pos > 0);
    let e = sub
        .recv_bytes_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!((e.position(), e.bytes()), (pos, &b"after"[..]));
    assert_eq!(sub.gaps(), (1, pos));
    // Nothing was written: no gap counted in the header, and the abandoned claim's
    // commit word is still not a commit.
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(t.path()).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, 896).unwrap();
    assert_eq!(u64::from_le_bytes(b), 0, "gap counter");
    f.read_exact_at(&mut b, 65536).unwrap();
    assert_eq!(u64::from_le_bytes(b) & 1, 0, "commit word at 0");
}

/// A query over a live ring is an inspecting reader: it reads past a claim that a killed
/// producer abandoned without writing a gap record (nothing but its own slot), and
/// counts the records around it.
#[test]
fn a_live_query_skips_an_abandoned_claim_without_writing_into_the_ring() {
    const TEST: &str = "a_live_query_skips_an_abandoned_claim_without_writing_into_the_ring";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("inspect-query");
    let t = topic(&tb.bus());
    let mut p = t.publisher().unwrap();
    p.send_bytes(1, b"before").unwrap();
    let c = spawn_role(
        TEST,
        "publish",
        &tb.dir,
        &[("SHMBUS_FAULT", "after_claim".into())],
    );
    let (st, _) = wait_child(c, Duration::from_secs(20));
    assert!(!st.success(), "the producer was to die after its claim");
    p.send_bytes(1, b"after").unwrap();
    let spec = shmbus::query::QuerySpec {
        aggregates: vec!["count".into()],
        ..Default::default()
    };
    let plan = shmbus::query::Plan::new(&spec, None, 0).unwrap();
    let mut rows = Vec::new();
    let stats = shmbus::query::LiveTopic::new(t.clone())
        .scan(
            &plan,
            &mut |r| {
                rows.push(format!("{r:?}"));
                true
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows, ["[Int(2)]"], "the records on both sides of the claim");
    assert_eq!(stats.records_scanned, 2, "{stats:?}");
    assert_eq!(t.stats().gaps, 0, "the query wrote a gap record");
}

/// Old payload bytes under a new record's commit word can look like anything; a
/// commit must never take them for a later lap's record and report a lost claim.
/// Random payloads through a small ring, many laps, grants and copies: every commit
/// succeeds and every record arrives.
#[test]
fn random_payloads_over_many_laps_never_lose_a_claim() {
    let tb = TempBus::new("laps");
    let t = tb
        .bus()
        .topic("laps")
        .capacity(4096)
        .open_or_create()
        .unwrap();
    let mut sub = t.subscriber().start(Start::Position(0)).open().unwrap();
    let mut p = t.publisher().unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000u64 {
        let len = 8 + (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8 | 1).collect();
        if i % 2 == 0 {
            let mut g = p.claim(len).unwrap();
            g.payload().copy_from_slice(&bytes);
            g.commit().unwrap();
        } else {
            p.send_bytes(0, &bytes).unwrap();
        }
        let e = sub
            .recv_bytes_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(e.bytes(), &bytes[..]);
    }
    assert_eq!(sub.gaps().0, 0);
}
