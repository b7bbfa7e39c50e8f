//! Real processes: 3 producers x 3 subscribers, over a million checksummed events.

mod common;

use std::time::Duration;

use common::*;
use shmbus::Start;

const TEST: &str = "three_producers_three_subscribers_every_event_once_in_one_order";
const PRODUCERS: u32 = 3;
const PER_PRODUCER: u64 = 340_000;

fn child(role: String) {
    let bus = shmbus::Bus::open_dir(child_dir()).unwrap();
    let topic = bus.topic("mp").event::<Msg>().open().unwrap();
    let (kind, id) = role.split_once(':').unwrap();
    let id: u32 = id.parse().unwrap();
    match kind {
        "pub" => {
            let mut p = topic.publisher().unwrap();
            for seq in 0..PER_PRODUCER {
                p.send(&msg(id, seq)).unwrap();
            }
        }
        "sub" => {
            let mut s = topic.subscriber().start(Start::Position(0)).open().unwrap();
            let total = PRODUCERS as u64 * PER_PRODUCER;
            let mut next = vec![0u64; PRODUCERS as usize];
            let mut order: u64 = 0xcbf2_9ce4_8422_2325;
            let mut last_pos = None;
            for _ in 0..total {
                let ev = s
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap()
                    .expect("no event within 60 s");
                assert!(verify(&ev), "checksum mismatch at {}", ev.position());
                let (p, seq) = (ev.producer.to_native(), ev.seq.to_native());
                assert_eq!(
                    seq, next[p as usize],
                    "producer {p} out of order or duplicated"
                );
                next[p as usize] += 1;
                if let Some(lp) = last_pos {
                    assert!(ev.position() > lp, "positions must increase");
                }
                last_pos = Some(ev.position());
                order = (order ^ ((p as u64) << 56 | seq)).wrapping_mul(0x100_0000_01b3);
            }
            // Nothing beyond the expected events.
            assert!(s.recv_timeout(Duration::from_millis(50)).unwrap().is_none());
            println!("RESULT {total} {order:016x} {}", s.gaps().0);
        }
        _ => unreachable!(),
    }
}

#[test]
fn three_producers_three_subscribers_every_event_once_in_one_order() {
    if let Some(role) = role() {
        return child(role);
    }
    let tb = TempBus::new("mp");
    let topic = tb
        .bus()
        .topic("mp")
        .event::<Msg>()
        .capacity(1 << 20)
        .open_or_create()
        .unwrap();
    let subs: Vec<_> = (0..3)
        .map(|i| spawn_role(TEST, &format!("sub:{i}"), &tb.dir, &[]))
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || topic.subscribers().len() == 3),
        "subscribers did not attach"
    );
    let pubs: Vec<_> = (0..PRODUCERS)
        .map(|i| spawn_role(TEST, &format!("pub:{i}"), &tb.dir, &[]))
        .collect();
    for p in pubs {
        let (st, _) = wait_child(p, Duration::from_secs(300));
        assert!(st.success(), "producer failed: {st}");
    }
    let mut results = Vec::new();
    for s in subs {
        let (st, out) = wait_child(s, Duration::from_secs(300));
        assert!(st.success(), "subscriber failed: {st}");
        let r = lines_with(&out, "RESULT");
        assert_eq!(r.len(), 1, "subscriber output: {out}");
        results.push(r[0].to_string());
    }
    let total = PRODUCERS as u64 * PER_PRODUCER;
    assert!(total >= 1_000_000);
    assert_eq!(
        results[0],
        format!("{total} {} 0", results[0].split(' ').nth(1).unwrap())
    );
    assert!(
        results.iter().all(|r| *r == results[0]),
        "subscribers disagree on the total order: {results:?}"
    );
    let stats = topic.stats();
    assert_eq!(stats.gaps, 0);
    assert_eq!(stats.evictions, 0);
}
