//! Eight processes race to create the same topic: one ring file, everyone attached.

mod common;

use std::time::{Duration, Instant};

use common::*;
use shmbus::Start;

const TEST: &str = "eight_processes_racing_open_or_create_end_with_one_ring_file";

#[test]
fn eight_processes_racing_open_or_create_end_with_one_ring_file() {
    if let Some(role) = role() {
        let dir = child_dir();
        let go = dir.join("go");
        let t0 = Instant::now();
        while !go.exists() {
            assert!(t0.elapsed() < Duration::from_secs(20), "no start signal");
            std::hint::spin_loop();
        }
        let bus = shmbus::Bus::open_dir(&dir).unwrap();
        let topic = bus
            .topic("race")
            .event::<Msg>()
            .capacity(1 << 16)
            .open_or_create()
            .unwrap();
        let id: u32 = role.parse().unwrap();
        topic.publisher().unwrap().send(&msg(id, 0)).unwrap();
        println!("OK");
        return;
    }
    for _round in 0..3 {
        let tb = TempBus::new("race");
        let children: Vec<_> = (0..8)
            .map(|i| spawn_role(TEST, &i.to_string(), &tb.dir, &[]))
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        std::fs::write(tb.dir.join("go"), b"").unwrap();
        for c in children {
            let (st, out) = wait_child(c, Duration::from_secs(60));
            assert!(st.success() && out.contains("OK"), "child failed: {st}");
        }
        let names: Vec<String> = std::fs::read_dir(&tb.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let rings: Vec<_> = names.iter().filter(|n| n.ends_with(".ring")).collect();
        assert_eq!(rings, vec!["race.ring"], "files: {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with('.')),
            "temporary files left behind: {names:?}"
        );
        let topic = tb.bus().topic("race").event::<Msg>().open().unwrap();
        let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();
        let mut ids = Vec::new();
        while let Some(ev) = sub.try_recv().unwrap() {
            ids.push(ev.producer.to_native());
        }
        ids.sort();
        assert_eq!(
            ids,
            (0..8).collect::<Vec<_>>(),
            "every racer published into the one topic"
        );
    }
}
