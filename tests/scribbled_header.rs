//! A ring header whose shared words were scribbled (the tail set to `u64::MAX` or
//! `1 << 40`, a consumer position past the tail): opening a subscriber fails at once
//! with `AttachError::CorruptWord` naming the word and its value; a subscriber that was
//! already reading returns `RecvError::CorruptWord` (after the unblock timeout, not
//! never); and no gap record is written on the strength of the scribbled words.

mod common;

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use common::TempBus;
use shmbus::{AttachError, RecvError, Start};

const OFF_TAIL: u64 = 256;
const OFF_GAPS: u64 = 896;
const CONSUMER_TABLE: u64 = 9216;
const CONSUMER_SLOT: u64 = 256;

fn word(path: &std::path::Path, off: u64) -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, off)
        .unwrap();
    u64::from_le_bytes(b)
}

fn scribble(path: &std::path::Path, off: u64, v: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&v.to_le_bytes(), off).unwrap();
}

/// A topic with ten records and a held named subscriber at 0 (so reliable mode bounds
/// the tail), its ring file path, and the data bytes after the header.
fn setup(tb: &TempBus) -> (shmbus::Topic<shmbus::Raw>, std::path::PathBuf) {
    let t = tb
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .unblock_timeout(Duration::from_millis(200))
        .open_or_create()
        .unwrap();
    drop(
        t.subscriber()
            .named("held")
            .start(Start::Position(0))
            .open()
            .unwrap(),
    );
    let mut p = t.publisher().unwrap();
    for i in 0..10u8 {
        p.send_bytes(1, &[i; 40]).unwrap();
    }
    let path = t.path().to_path_buf();
    (t, path)
}

fn data(path: &std::path::Path) -> Vec<u8> {
    let all = std::fs::read(path).unwrap();
    all[65536..].to_vec()
}

#[test]
fn scribbled_tail_fails_opening_with_the_word_and_value_and_writes_nothing() {
    for bad in [u64::MAX, 1 << 40, 640 + 1] {
        let tb = TempBus::new("scribble-tail");
        let (t, path) = setup(&tb);
        scribble(&path, OFF_TAIL, bad);
        let before = data(&path);
        let t0 = Instant::now();
        for start in [Start::Earliest, Start::Latest, Start::Position(0)] {
            match t.subscriber().start(start).accept_loss(true).open() {
                Err(AttachError::CorruptWord { word, value }) => {
                    assert!(word.starts_with("tail"), "{word}");
                    assert_eq!(value, bad);
                }
                Err(e) => panic!("{bad:#x}: {e:?}"),
                Ok(_) => panic!("{bad:#x}: opened on a scribbled tail"),
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_eq!(data(&path), before, "{bad:#x}: data region written");
        assert_eq!(word(&path, OFF_GAPS), 0, "{bad:#x}: a gap was counted");
    }
}

#[test]
fn scribbled_consumer_position_fails_opening() {
    let tb = TempBus::new("scribble-pos");
    let (t, path) = setup(&tb);
    // The held subscriber's slot is the first one taken (slot 0).
    let bad = 1u64 << 50;
    scribble(&path, CONSUMER_TABLE, bad);
    match t.subscriber().open() {
        Err(AttachError::CorruptWord { word, value }) => {
            assert!(word.starts_with("consumer 0 position"), "{word}");
            assert_eq!(value, bad);
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let _ = CONSUMER_SLOT;
}

#[test]
fn reading_subscriber_stops_with_a_typed_error_and_writes_no_gap() {
    let tb = TempBus::new("scribble-read");
    let (t, path) = setup(&tb);
    let mut sub = t.subscriber().start(Start::Position(0)).open().unwrap();
    for _ in 0..10 {
        sub.recv_bytes_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap();
    }
    let bad = 1u64 << 40;
    scribble(&path, OFF_TAIL, bad);
    let before = data(&path);
    let t0 = Instant::now();
    let err = loop {
        match sub.recv_bytes_timeout(Duration::from_millis(100)) {
            Ok(None) => assert!(t0.elapsed() < Duration::from_secs(10), "still waiting"),
            Ok(Some(e)) => panic!("a record at {}", e.position()),
            Err(e) => break e,
        }
    };
    match err {
        RecvError::CorruptWord { word, value, .. } => {
            assert!(word.starts_with("tail"), "{word}");
            assert_eq!(value, bad);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(data(&path), before, "data region written");
    assert_eq!(word(&path, OFF_GAPS), 0, "a gap was counted");
}
