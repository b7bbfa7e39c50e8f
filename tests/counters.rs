//! The topic's counters are monotonic: records, bytes and stalls published never drop
//! when a publisher detaches, dies, or its slot is taken over by another process.

mod common;

use std::time::Duration;

use common::{child_dir, role, sigkill, spawn_role, wait_until, TempBus};

#[test]
fn counters_survive_publishers_that_detach() {
    let tb = TempBus::new("counters-detach");
    let bus = tb.bus();
    let topic = bus.topic("t").capacity(1 << 16).open_or_create().unwrap();
    let _sub = topic.subscriber().open().unwrap();
    let mut first = topic.publisher().unwrap();
    for _ in 0..10 {
        first.send_bytes(1, b"0123456789").unwrap();
    }
    drop(first);
    let s = topic.stats();
    assert_eq!((s.records, s.bytes), (10, 100));

    let mut second = topic.publisher().unwrap();
    for _ in 0..5 {
        second.send_bytes(1, b"abc").unwrap();
    }
    let s = topic.stats();
    assert_eq!((s.records, s.bytes), (15, 115));
    // Per producer, a publisher counts only what it published itself.
    let p = topic.producers();
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].records, p[0].bytes), (5, 15));
    drop(second);
    assert_eq!(topic.stats().records, 15);
}

#[test]
fn counters_survive_a_killed_publisher_and_the_reaping_of_its_slot() {
    if role().as_deref() == Some("publish-then-hang") {
        let bus = shmbus::Bus::open_dir(child_dir()).unwrap();
        let topic = bus.topic("t").open().unwrap();
        let mut p = topic.publisher().unwrap();
        for _ in 0..7 {
            p.send_bytes(1, b"12345678").unwrap();
        }
        println!("published");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let tb = TempBus::new("counters-kill");
    let bus = tb.bus();
    let topic = bus.topic("t").capacity(1 << 16).open_or_create().unwrap();
    let _sub = topic.subscriber().open().unwrap();
    let child = spawn_role(
        "counters_survive_a_killed_publisher_and_the_reaping_of_its_slot",
        "publish-then-hang",
        &tb.dir,
        &[],
    );
    assert!(wait_until(Duration::from_secs(20), || topic
        .stats()
        .records
        == 7));
    sigkill(&child);
    let mut child = child;
    let _ = child.wait();
    assert_eq!(topic.stats().records, 7, "a dead publisher's counts stay");
    // Fill every free slot so the next publisher must reap the dead one's slot.
    let mut held: Vec<_> = Vec::new();
    while let Ok(p) = topic.publisher() {
        held.push(p);
        if held.len() > shmbus::ring::layout::MAX_PRODUCERS {
            break;
        }
    }
    assert_eq!(
        held.len(),
        shmbus::ring::layout::MAX_PRODUCERS,
        "the dead publisher's slot was taken over"
    );
    assert_eq!(topic.header_words().reaped_producers, 1);
    held[0].send_bytes(1, b"x").unwrap();
    let s = topic.stats();
    assert_eq!((s.records, s.bytes), (8, 57));
}
