//! Crash safety with real processes: producers SIGKILLed at exact fault points and at
//! random moments, dead and stuck subscribers, durable names surviving their process.

mod common;

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use shmbus::{Bus, RecvError, SendError, Start, Topic};

fn open_topic(bus: &Bus) -> Topic<Msg> {
    bus.topic("crash")
        .event::<Msg>()
        .capacity(1 << 16)
        .unblock_timeout(Duration::from_millis(200))
        .consumer_timeout(Duration::from_millis(300))
        .open_or_create()
        .unwrap()
}

/// Child roles shared by the tests below.
fn child(role: String) {
    let bus = Bus::open_dir(child_dir()).unwrap();
    let topic = open_topic(&bus);
    let arg = |i: usize| -> u64 { role.split(':').nth(i).unwrap().parse().unwrap() };
    match role.split(':').next().unwrap() {
        // pub:<id>:<count>
        "pub" => {
            let mut p = topic.publisher().unwrap();
            for seq in 0..arg(2) {
                p.send(&msg(arg(1) as u32, seq)).unwrap();
            }
        }
        // xpub:<id>:<count>: as `pub`, through the topic's exclusive publisher.
        "xpub" => {
            let mut p = topic.exclusive_publisher().unwrap();
            for seq in 0..arg(2) {
                p.send(&msg(arg(1) as u32, seq)).unwrap();
            }
        }
        // batch:<id>:<count>:<batch>: publish count events in batches of `batch`.
        "batch" => {
            let mut p = topic.publisher().unwrap();
            let events: Vec<Msg> = (0..arg(2)).map(|seq| msg(arg(1) as u32, seq)).collect();
            for chunk in events.chunks(arg(3) as usize) {
                p.send_batch(chunk).unwrap();
            }
        }
        // sub:<count>: read count events then wait to be killed.
        "sub" => {
            let mut s = topic.subscriber().start(Start::Position(0)).open().unwrap();
            for _ in 0..arg(1) {
                s.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
            }
            println!("READ");
            std::thread::sleep(Duration::from_secs(30));
        }
        // named:<count>: a durable subscriber reads count events, commits, dies.
        "named" => {
            let mut s = topic
                .subscriber()
                .named("durable")
                .start(Start::Position(0))
                .open()
                .unwrap();
            let mut last = 0;
            for _ in 0..arg(1) {
                last = s
                    .recv_timeout(Duration::from_secs(30))
                    .unwrap()
                    .unwrap()
                    .seq
                    .to_native();
            }
            s.commit();
            println!("LAST {last}");
            // SAFETY: dying like kill -9, with no destructor run.
            unsafe { libc::raise(libc::SIGKILL) };
        }
        // named-nocommit:<count>: as `named`, but killed without an explicit commit.
        "named-nocommit" => {
            let mut s = topic
                .subscriber()
                .named("durable")
                .start(Start::Position(0))
                .open()
                .unwrap();
            let mut last = 0;
            for _ in 0..arg(1) {
                last = s
                    .recv_timeout(Duration::from_secs(30))
                    .unwrap()
                    .unwrap()
                    .seq
                    .to_native();
            }
            println!("LAST {last}");
            // SAFETY: dying like kill -9, with no destructor run.
            unsafe { libc::raise(libc::SIGKILL) };
        }
        // idle: block on recv until one event arrives.
        "idle" => {
            let mut s = topic.subscriber().open().unwrap();
            println!("READY");
            let ev = s
                .recv_timeout(Duration::from_secs(30))
                .unwrap()
                .expect("woken within 30 s");
            println!("GOT {}", ev.seq.to_native());
        }
        r => panic!("unknown role {r}"),
    }
}

/// Read until `done` says so (or nothing arrives for `quiet`), checking checksums,
/// exactly-once and per-producer order. Returns per-producer counts.
fn drain(
    sub: &mut shmbus::Subscriber<Msg>,
    quiet: Duration,
    mut done: impl FnMut(&[u64]) -> bool,
) -> Vec<u64> {
    let mut next = vec![0u64; 4];
    loop {
        if done(&next) {
            return next;
        }
        match sub.recv_timeout(quiet).unwrap() {
            None => return next,
            Some(ev) => {
                assert!(verify(&ev), "checksum mismatch at {}", ev.position());
                let (p, seq) = (ev.producer.to_native() as usize, ev.seq.to_native());
                assert_eq!(
                    seq, next[p],
                    "producer {p}: got seq {seq}, expected {}",
                    next[p]
                );
                next[p] += 1;
            }
        }
    }
}

fn fault_point_case(test: &str, point: &str) {
    fault_case(test, point, "pub:0:1000");
}

/// Producer 0 (role `faulty`) publishes 100 events and dies at the exact step `point`
/// of its 101st; then a shared producer publishes 3000 behind the abandoned claim.
fn fault_case(test: &str, point: &str, faulty: &str) {
    let tb = TempBus::new(point);
    let topic = open_topic(&tb.bus());
    let mut sub = topic.subscriber().start(Start::Position(0)).open().unwrap();
    let faulty = spawn_role(
        test,
        faulty,
        &tb.dir,
        &[
            ("SHMBUS_FAULT", point.to_string()),
            ("SHMBUS_FAULT_SKIP", "100".to_string()),
        ],
    );
    let reader = std::thread::spawn(move || {
        let counts = drain(&mut sub, Duration::from_secs(10), |n| {
            n[0] == 100 && n[1] == 3000
        });
        (counts, sub.gaps().0)
    });
    let (st, _) = wait_child(faulty, Duration::from_secs(30));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "the fault point must kill the producer"
    );
    // A live producer keeps publishing behind the abandoned claim.
    let good = spawn_role(test, "pub:1:3000", &tb.dir, &[]);
    let (st, _) = wait_child(good, Duration::from_secs(60));
    assert!(st.success());
    let (counts, gaps) = reader.join().unwrap();
    assert_eq!(
        counts[0], 100,
        "every event the dead producer committed arrives once"
    );
    assert_eq!(
        counts[1], 3000,
        "the live producer is not wedged by the dead one"
    );
    assert_eq!(gaps, 1, "the abandoned claim becomes exactly one gap");
    assert_eq!(topic.stats().gaps, 1);
}

#[test]
fn producer_killed_after_claim_leaves_one_gap_and_loses_nothing_committed() {
    if let Some(r) = role() {
        return child(r);
    }
    fault_point_case(
        "producer_killed_after_claim_leaves_one_gap_and_loses_nothing_committed",
        "after_claim",
    );
}

#[test]
fn producer_killed_before_commit_leaves_one_gap_and_loses_nothing_committed() {
    if let Some(r) = role() {
        return child(r);
    }
    fault_point_case(
        "producer_killed_before_commit_leaves_one_gap_and_loses_nothing_committed",
        "before_commit",
    );
}

#[test]
fn exclusive_producer_killed_after_claim_leaves_one_gap_and_a_shared_one_takes_over() {
    if let Some(r) = role() {
        return child(r);
    }
    fault_case(
        "exclusive_producer_killed_after_claim_leaves_one_gap_and_a_shared_one_takes_over",
        "after_claim",
        "xpub:0:1000",
    );
}

#[test]
fn exclusive_producer_killed_before_commit_leaves_one_gap_and_a_shared_one_takes_over() {
    if let Some(r) = role() {
        return child(r);
    }
    fault_case(
        "exclusive_producer_killed_before_commit_leaves_one_gap_and_a_shared_one_takes_over",
        "before_commit",
        "xpub:0:1000",
    );
}

#[test]
fn producers_killed_at_random_moments_never_wedge_or_lose_committed_events() {
    const TEST: &str = "producers_killed_at_random_moments_never_wedge_or_lose_committed_events";
    if let Some(r) = role() {
        return child(r);
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = seed | 1;
    println!("seed {seed}");
    for round in 0..4 {
        let tb = TempBus::new("random-kill");
        let topic = open_topic(&tb.bus());
        let mut sub = topic.subscriber().start(Start::Position(0)).open().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let reader = std::thread::spawn(move || {
            let counts = drain(&mut sub, Duration::from_secs(10), |n| {
                n[1] == 50_000 && n[2] == 50_000 && stop2.load(Ordering::Relaxed)
            });
            // Anything still in the ring from the killed producer.
            let rest = drain(&mut sub, Duration::from_millis(500), |_| false);
            (counts, rest)
        });
        let victim = spawn_role(TEST, "pub:0:100000000", &tb.dir, &[]);
        let others: Vec<Child> = (1..3)
            .map(|i| spawn_role(TEST, &format!("pub:{i}:50000"), &tb.dir, &[]))
            .collect();
        // The kill lands at a random moment of the victim's publishing, not before it
        // starts (a process start can take longer than the shortest pause).
        let victim_pid = victim.id();
        assert!(
            wait_until(Duration::from_secs(30), || topic
                .producers()
                .iter()
                .any(|p| p.pid == victim_pid && p.records > 0)),
            "round {round}: the victim never published"
        );
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 200));
        sigkill(&victim);
        let _ = wait_child(victim, Duration::from_secs(10));
        for o in others {
            let (st, _) = wait_child(o, Duration::from_secs(120));
            assert!(st.success(), "round {round}: surviving producer failed");
        }
        stop.store(true, Ordering::Relaxed);
        let (counts, rest) = reader.join().unwrap();
        assert_eq!(
            (counts[1], counts[2]),
            (50_000, 50_000),
            "round {round}: survivors' events all arrive"
        );
        assert_eq!(
            rest.iter().sum::<u64>(),
            0,
            "round {round}: nothing after the survivors finished"
        );
        assert!(
            counts[0] > 0,
            "round {round}: the victim published before it was killed"
        );
        println!(
            "round {round}: victim committed {} events, gaps {}",
            counts[0],
            topic.stats().gaps
        );
    }
}

#[test]
fn dead_subscriber_is_evicted_and_producers_keep_going() {
    const TEST: &str = "dead_subscriber_is_evicted_and_producers_keep_going";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("dead-sub");
    let topic = open_topic(&tb.bus());
    let mut survivor = topic.subscriber().start(Start::Position(0)).open().unwrap();
    let mut victim = spawn_role(TEST, "sub:10", &tb.dir, &[]);
    assert!(wait_until(Duration::from_secs(10), || topic
        .subscribers()
        .len()
        == 2));
    let reader = std::thread::spawn(move || {
        drain(&mut survivor, Duration::from_secs(10), |n| n[0] == 20_000)
    });
    let mut p = topic.publisher().unwrap();
    for seq in 0..10 {
        p.send(&msg(0, seq)).unwrap();
    }
    assert!(read_until(
        &mut std::io::BufReader::new(victim.stdout.as_mut().unwrap()),
        "READ"
    ));
    sigkill(&victim);
    victim.wait().unwrap();
    // 20,000 events of 128 bytes are ~40 rings: only possible once the dead one is gone.
    for seq in 10..20_000 {
        p.send_timeout(&msg(0, seq), Duration::from_secs(10))
            .expect("producer wedged by a dead subscriber");
    }
    assert_eq!(reader.join().unwrap()[0], 20_000);
    assert!(topic.stats().evictions >= 1);
    assert!(
        topic.subscribers().is_empty(),
        "the dead subscriber's slot is freed (the survivor left too)"
    );
}

#[test]
fn stuck_subscriber_is_evicted_after_the_consumer_timeout() {
    let tb = TempBus::new("stuck");
    let topic = open_topic(&tb.bus());
    let mut stuck = topic.subscriber().open().unwrap();
    let mut p = topic.publisher().unwrap();
    let t0 = Instant::now();
    for seq in 0..2_000 {
        p.send_timeout(&msg(0, seq), Duration::from_secs(10))
            .unwrap();
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "evicted before the consumer timeout"
    );
    assert_eq!(stuck.try_recv().err(), Some(RecvError::Evicted));
    drop(stuck);
    assert!(topic.subscribers().is_empty());
}

#[test]
fn named_subscriber_is_held_for_when_the_topic_says_so() {
    let tb = TempBus::new("hold");
    let topic = tb
        .bus()
        .topic("held")
        .event::<Msg>()
        .capacity(1 << 14)
        .consumer_timeout(Duration::from_millis(50))
        .hold_named(true)
        .open_or_create()
        .unwrap();
    let mut named = topic.subscriber().named("audit").open().unwrap();
    let mut p = topic.publisher().unwrap();
    let mut sent = 0;
    loop {
        match p.try_send(&msg(0, sent)) {
            Ok(_) => sent += 1,
            Err(SendError::BackPressured) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        p.send_timeout(&msg(0, sent), Duration::from_millis(300)),
        Err(SendError::Timeout)
    );
    // Not evicted: it still reads everything from the start.
    for seq in 0..sent {
        assert_eq!(named.try_recv().unwrap().unwrap().seq.to_native(), seq);
    }
    assert!(
        p.try_send(&msg(0, sent)).is_ok(),
        "room again once the named subscriber read"
    );
}

#[test]
fn named_subscriber_resumes_where_its_killed_predecessor_committed() {
    const TEST: &str = "named_subscriber_resumes_where_its_killed_predecessor_committed";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("named");
    let topic = open_topic(&tb.bus());
    let mut p = topic.publisher().unwrap();
    for seq in 0..200 {
        p.send(&msg(0, seq)).unwrap();
    }
    let (st, out) = wait_child(
        spawn_role(TEST, "named:150", &tb.dir, &[]),
        Duration::from_secs(30),
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert_eq!(lines_with(&out, "LAST"), vec!["149"]);
    let info = topic.subscribers();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].name.as_deref(), Some("durable"));
    assert!(!info[0].alive);
    let mut again = topic.subscriber().named("durable").open().unwrap();
    assert_eq!(
        again.try_recv().unwrap().unwrap().seq.to_native(),
        150,
        "resumes after the last committed event"
    );
    // A second live holder of the name is refused.
    assert!(matches!(
        topic.subscriber().named("durable").open(),
        Err(shmbus::AttachError::NameInUse(_))
    ));
}

#[test]
fn named_subscriber_killed_without_commit_gets_only_its_last_event_again() {
    const TEST: &str = "named_subscriber_killed_without_commit_gets_only_its_last_event_again";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("nocommit");
    let topic = open_topic(&tb.bus());
    let mut p = topic.publisher().unwrap();
    for seq in 0..200 {
        p.send(&msg(0, seq)).unwrap();
    }
    // 150 records are more than one release stride (an eighth of the ring), so only
    // the per-receive progress word knows exactly how far the subscriber got.
    let (st, out) = wait_child(
        spawn_role(TEST, "named-nocommit:150", &tb.dir, &[]),
        Duration::from_secs(30),
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert_eq!(lines_with(&out, "LAST"), vec!["149"]);
    let info = topic.subscribers();
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].position,
        149 * 128,
        "progress of the killed subscriber"
    );
    let mut again = topic.subscriber().named("durable").open().unwrap();
    assert_eq!(
        again.try_recv().unwrap().unwrap().seq.to_native(),
        149,
        "the event in hand when it died comes again, and nothing earlier"
    );
}

#[test]
fn slow_subscriber_that_keeps_reading_is_not_evicted_between_releases() {
    let tb = TempBus::new("slow");
    let topic = tb
        .bus()
        .topic("slow")
        .event::<Msg>()
        .capacity(1 << 16)
        .consumer_timeout(Duration::from_millis(500))
        .open_or_create()
        .unwrap();
    let mut sub = topic.subscriber().open().unwrap();
    const N: u64 = 2_000;
    let producer = {
        let topic = topic.clone();
        std::thread::spawn(move || {
            let mut p = topic.publisher().unwrap();
            for seq in 0..N {
                p.send_timeout(&msg(0, seq), Duration::from_secs(30))
                    .unwrap();
            }
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || topic.stats().stalls > 0),
        "the producer fills the ring"
    );
    // 30 records (under one release stride of 64 records) over about twice the consumer
    // timeout: the released position stands still, the progress word moves.
    for seq in 0..30 {
        assert_eq!(sub.recv().unwrap().seq.to_native(), seq);
        std::thread::sleep(Duration::from_millis(35));
    }
    for seq in 30..N {
        let ev = sub
            .recv_timeout(Duration::from_secs(30))
            .expect("not evicted")
            .expect("producer keeps going");
        assert_eq!(ev.seq.to_native(), seq);
    }
    producer.join().unwrap();
    assert_eq!(topic.stats().evictions, 0);
}

#[test]
fn producer_killed_in_the_middle_of_a_batch_leaves_one_gap_for_the_rest_of_it() {
    const TEST: &str = "producer_killed_in_the_middle_of_a_batch_leaves_one_gap_for_the_rest_of_it";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("batchkill");
    let topic = open_topic(&tb.bus());
    let mut sub = topic.subscriber().start(Start::Position(0)).open().unwrap();
    // Batches of 10: dies before committing its 106th record, the 6th of a batch.
    let faulty = spawn_role(
        TEST,
        "batch:0:1000:10",
        &tb.dir,
        &[
            ("SHMBUS_FAULT", "before_commit".to_string()),
            ("SHMBUS_FAULT_SKIP", "105".to_string()),
        ],
    );
    let (st, _) = wait_child(faulty, Duration::from_secs(30));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    let good = spawn_role(TEST, "batch:1:3000:64", &tb.dir, &[]);
    let counts = drain(&mut sub, Duration::from_secs(10), |n| {
        n[0] == 105 && n[1] == 3000
    });
    assert_eq!(&counts[..2], &[105, 3000]);
    assert_eq!(sub.gaps().0, 1, "the rest of the batch is one gap record");
    assert_eq!(
        sub.gaps().1,
        5 * 128,
        "the gap covers exactly the 5 uncommitted records"
    );
    let (st, _) = wait_child(good, Duration::from_secs(60));
    assert!(st.success());
}

#[test]
fn live_producer_stopped_in_the_middle_of_a_batch_is_never_gapped() {
    const TEST: &str = "live_producer_stopped_in_the_middle_of_a_batch_is_never_gapped";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("batchstop");
    let topic = open_topic(&tb.bus());
    let mut sub = topic.subscriber().start(Start::Position(0)).open().unwrap();
    // Stops itself (alive) before committing its 16th record, the 6th of a batch.
    let stopped = spawn_role(
        TEST,
        "batch:0:100:10",
        &tb.dir,
        &[
            ("SHMBUS_FAULT", "before_commit".to_string()),
            ("SHMBUS_FAULT_SKIP", "15".to_string()),
            ("SHMBUS_FAULT_STOP", "1".to_string()),
        ],
    );
    // Never leave a stopped process behind, whatever happens below.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let guard = KillOnDrop(stopped.id() as i32);
    let counts = drain(&mut sub, Duration::from_secs(10), |n| n[0] == 15);
    assert_eq!(counts[0], 15);
    // Blocked behind the live producer's claim for several unblock timeouts (200 ms).
    assert!(sub
        .recv_timeout(Duration::from_millis(1000))
        .unwrap()
        .is_none());
    assert_eq!(sub.gaps().0, 0, "a live producer's claim is never gapped");
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(guard.0, libc::SIGCONT) }, 0);
    for seq in 15..100 {
        let ev = sub
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("the rest arrives once it continues");
        assert!(verify(&ev));
        assert_eq!((ev.producer.to_native(), ev.seq.to_native()), (0, seq));
    }
    assert_eq!(sub.gaps().0, 0);
    let (st, _) = wait_child(stopped, Duration::from_secs(30));
    std::mem::forget(guard);
    assert!(st.success());
}

#[test]
fn blocked_idle_subscriber_uses_no_cpu_and_wakes_on_publish() {
    const TEST: &str = "blocked_idle_subscriber_uses_no_cpu_and_wakes_on_publish";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("idle");
    let topic = open_topic(&tb.bus());
    let mut c = spawn_role(TEST, "idle", &tb.dir, &[]);
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    assert!(read_until(&mut out, "READY"));
    let ticks = |pid: u32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let before = ticks(c.id());
    std::thread::sleep(Duration::from_millis(1000));
    let used = ticks(c.id()) - before;
    // A spinning subscriber would burn ~100 ticks in a second; a blocked one ~0.
    assert!(
        used <= 5,
        "idle blocked subscriber used {used} ticks of CPU in 1 s"
    );
    let mut p = topic.publisher().unwrap();
    p.send(&msg(0, 42)).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(rest.contains("GOT 42"), "{rest}");
    assert!(c.wait().unwrap().success());
}

#[test]
fn subscriber_killed_while_asleep_does_not_leave_a_waiter_behind() {
    const TEST: &str = "subscriber_killed_while_asleep_does_not_leave_a_waiter_behind";
    if let Some(r) = role() {
        return child(r);
    }
    let tb = TempBus::new("sleeper");
    let topic = open_topic(&tb.bus());
    let waiters = || {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 4];
        std::fs::File::open(topic.path())
            .unwrap()
            .read_exact_at(&mut b, 644)
            .unwrap();
        u32::from_le_bytes(b)
    };
    let mut c = spawn_role(TEST, "idle", &tb.dir, &[]);
    assert!(read_until(
        &mut std::io::BufReader::new(c.stdout.as_mut().unwrap()),
        "READY"
    ));
    assert!(
        wait_until(Duration::from_secs(10), || waiters() == 1),
        "the subscriber never slept"
    );
    sigkill(&c);
    c.wait().unwrap();
    assert_eq!(
        waiters(),
        1,
        "a killed sleeper cannot withdraw its own announcement"
    );
    // Blocked by the dead subscriber, the producer evicts it and withdraws it.
    let mut p = topic.publisher().unwrap();
    for seq in 0..2_000 {
        p.send_timeout(&msg(0, seq), Duration::from_secs(10))
            .unwrap();
    }
    assert_eq!(
        waiters(),
        0,
        "the evicted sleeper's waiter announcement was withdrawn"
    );
}
