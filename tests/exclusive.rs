//! Exclusive publishers: who may attach beside them, what a killed one leaves behind,
//! subscribers joining while one streams; and wake-ups of blocked subscribers (which
//! issue the memory barrier that exclusive and shared publishers' commits skip).

mod common;

use std::time::{Duration, Instant};

use common::*;
use shmbus::{AttachError, Bus, Start, Topic, Wait};

fn open_topic(bus: &Bus, name: &str, capacity: u64) -> Topic<Msg> {
    bus.topic(name)
        .event::<Msg>()
        .capacity(capacity)
        // Long enough that a blocked receive sleeps for its full second between
        // checks: a missed wake-up shows as a receive that takes about that long.
        .unblock_timeout(Duration::from_secs(10))
        .open_or_create()
        .unwrap()
}

/// Child roles.
fn child(role: String) {
    let bus = Bus::open_dir(child_dir()).unwrap();
    match role.as_str() {
        // Hold the exclusive publisher until killed.
        "hold" => {
            let t = open_topic(&bus, "x", 1 << 16);
            let _p = t.exclusive_publisher().unwrap();
            println!("HOLDING");
            std::thread::sleep(Duration::from_secs(60));
        }
        // Echo every ping back as a pong, both ways through exclusive publishers (shared
        // ones with `SHMBUS_TEST_SHARED`) and blocked subscribers, until the ping with
        // seq u64::MAX.
        "echo" => {
            let ping = open_topic(&bus, "ping", 1 << 16);
            let pong = open_topic(&bus, "pong", 1 << 16);
            let mut sub = ping
                .subscriber()
                .start(Start::Position(0))
                .wait(Wait::Block)
                .open()
                .unwrap();
            let mut p = publisher(&pong, std::env::var_os("SHMBUS_TEST_SHARED").is_some());
            println!("READY");
            loop {
                let seq = match sub.recv_timeout(Duration::from_secs(30)).unwrap() {
                    Some(m) => {
                        assert!(verify(&m));
                        m.seq.to_native()
                    }
                    None => panic!("no ping for 30 s"),
                };
                if seq == u64::MAX {
                    break;
                }
                p.send(&msg(1, seq)).unwrap();
            }
        }
        r => panic!("unknown role {r}"),
    }
}

#[test]
fn an_exclusive_publisher_keeps_other_publishers_out_until_dropped() {
    let tb = TempBus::new("excl-rules");
    let t = open_topic(&tb.bus(), "x", 1 << 16);
    let x = t.exclusive_publisher().unwrap();
    assert_eq!(t.publisher().err(), Some(AttachError::ExclusivePublisher));
    assert_eq!(
        t.exclusive_publisher().err(),
        Some(AttachError::ExclusivePublisher)
    );
    // Refused attempts leave no producer slot behind.
    assert_eq!(t.producers().len(), 1);
    drop(x);
    let shared = t.publisher().unwrap();
    let other = t.publisher().unwrap();
    assert_eq!(
        t.exclusive_publisher().err(),
        Some(AttachError::PublishersAttached)
    );
    drop(shared);
    assert_eq!(
        t.exclusive_publisher().err(),
        Some(AttachError::PublishersAttached)
    );
    drop(other);
    let mut x = t.exclusive_publisher().unwrap();
    let mut sub = t.subscriber().start(Start::Position(0)).open().unwrap();
    for seq in 0..10 {
        x.send(&msg(0, seq)).unwrap();
    }
    for seq in 0..10 {
        let m = sub.try_recv().unwrap().unwrap();
        assert!(verify(&m));
        assert_eq!(m.seq.to_native(), seq);
    }
    assert!(AttachError::ExclusivePublisher
        .to_string()
        .contains("exclusively"));
}

#[test]
fn a_killed_exclusive_publisher_does_not_keep_the_topic() {
    const TEST: &str = "a_killed_exclusive_publisher_does_not_keep_the_topic";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("excl-killed");
    let t = open_topic(&tb.bus(), "x", 1 << 16);
    let mut c = spawn_role(TEST, "hold", &tb.dir, &[]);
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    assert!(read_until(&mut out, "HOLDING"));
    assert_eq!(t.publisher().err(), Some(AttachError::ExclusivePublisher));
    sigkill(&c);
    c.wait().unwrap();
    // Its process is gone: shared publishers may attach (the last one into its slot),
    // and then an exclusive one may not (the shared ones are live).
    let mut shared: Vec<_> = (0..shmbus::ring::layout::MAX_PRODUCERS)
        .map(|_| t.publisher().unwrap())
        .collect();
    assert_eq!(t.publisher().err(), Some(AttachError::TooManyProducers));
    // A slot freed elsewhere: the dead holder's slot, now a live shared publisher's,
    // does not make the topic look exclusively held.
    shared.remove(0);
    assert_eq!(
        t.exclusive_publisher().err(),
        Some(AttachError::PublishersAttached)
    );
    let again = t.publisher().unwrap();
    drop(again);
    shared.clear();
    t.exclusive_publisher().unwrap();
}

#[test]
fn blocked_subscribers_wake_for_every_event_of_exclusive_publishers() {
    const TEST: &str = "blocked_subscribers_wake_for_every_event_of_exclusive_publishers";
    if let Some(r) = role() {
        return child(r);
    }
    round_trips(TEST, "excl-wake", &[], 3000, false);
}

#[test]
fn blocked_subscribers_wake_for_every_event_of_shared_publishers() {
    const TEST: &str = "blocked_subscribers_wake_for_every_event_of_shared_publishers";
    if let Some(r) = role() {
        return child(r);
    }
    let env = [("SHMBUS_TEST_SHARED", "1".to_string())];
    round_trips(TEST, "shared-wake", &env, 3000, true);
}

#[test]
fn blocked_subscribers_wake_for_shared_publishers_without_membarrier() {
    const TEST: &str = "blocked_subscribers_wake_for_shared_publishers_without_membarrier";
    if let Some(r) = role() {
        return child(r);
    }
    let env = [
        ("SHMBUS_TEST_SHARED", "1".to_string()),
        ("SHMBUS_FAULT_NO_MEMBARRIER", "1".to_string()),
    ];
    round_trips(TEST, "shared-nomb", &env, 300, true);
}

/// The topic's exclusive publisher, or a shared one.
fn publisher(t: &Topic<Msg>, shared: bool) -> shmbus::Publisher<Msg> {
    if shared {
        t.publisher().unwrap()
    } else {
        t.exclusive_publisher().unwrap()
    }
}

#[test]
fn blocked_subscribers_wake_without_membarrier() {
    const TEST: &str = "blocked_subscribers_wake_without_membarrier";
    if let Some(r) = role() {
        return child(r);
    }
    // The echo process cannot issue the barrier (as under a seccomp filter that
    // refuses membarrier): it must sleep in short steps and still see every ping.
    let env = [("SHMBUS_FAULT_NO_MEMBARRIER", "1".to_string())];
    round_trips(TEST, "excl-nomb", &env, 300, false);
}

/// `n` round trips with the echo process, every receive on both sides blocked on the
/// futex, through exclusive publishers or `shared` ones. A wake-up lost by either side
/// leaves its receive asleep for a full second.
fn round_trips(test: &str, tag: &str, env: &[(&str, String)], n: u64, shared: bool) {
    let tb = TempBus::new(tag);
    let bus = tb.bus();
    let ping = open_topic(&bus, "ping", 1 << 16);
    let pong = open_topic(&bus, "pong", 1 << 16);
    let mut sub = pong
        .subscriber()
        .start(Start::Position(0))
        .wait(Wait::Block)
        .open()
        .unwrap();
    let mut p = publisher(&ping, shared);
    let mut c = spawn_role(test, "echo", &tb.dir, env);
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    assert!(read_until(&mut out, "READY"));
    let mut slowest = Duration::ZERO;
    for seq in 0..n {
        // Let the echo process fall asleep before the ping arrives, most times.
        if seq % 3 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let t0 = Instant::now();
        p.send(&msg(0, seq)).unwrap();
        let m = sub
            .recv_timeout(Duration::from_secs(30))
            .unwrap()
            .expect("pong within 30 s");
        slowest = slowest.max(t0.elapsed());
        if slowest >= Duration::from_millis(900) {
            sigkill(&c);
            panic!(
                "round trip {seq} took {slowest:?}: a wake-up was lost and found only by \
                 the sleeper's periodic check"
            );
        }
        assert!(verify(&m));
        assert_eq!(m.seq.to_native(), seq);
    }
    p.send(&msg(0, u64::MAX)).unwrap();
    // To the end of its output: the echo process exits after the last ping (its own
    // receives give up after 30 s).
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let st = c.wait().unwrap();
    assert!(st.success());
}

#[test]
fn subscribers_joining_while_an_exclusive_publisher_streams_read_intact_events() {
    let tb = TempBus::new("excl-join");
    let t = open_topic(&tb.bus(), "x", 1 << 16);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let t = t.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut p = t.exclusive_publisher().unwrap();
            let mut seq = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                p.send(&msg(0, seq)).unwrap();
                seq += 1;
            }
            seq
        })
    };
    for round in 0..200 {
        let start = if round % 2 == 0 {
            Start::Earliest
        } else {
            Start::Latest
        };
        let mut sub = t.subscriber().start(start).open().unwrap();
        let mut last: Option<u64> = None;
        for _ in 0..500 {
            let m = sub
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .expect("the publisher keeps publishing");
            assert!(verify(&m), "round {round}: checksum at {}", m.position());
            let seq = m.seq.to_native();
            if let Some(l) = last {
                assert_eq!(seq, l + 1, "round {round}: events skipped or repeated");
            }
            last = Some(seq);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(publisher.join().unwrap() > 0);
}
