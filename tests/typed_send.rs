//! Typed `send` writes exactly the archive rkyv's own serializer makes, whether the
//! event is all inline (resolved straight into the ring, padding zeroed) or has
//! out-of-line data (serialised into a buffer and copied).

mod common;

use common::TempBus;
use shmbus::{Event, Start};

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Buy,
    Sell,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct Inner {
    a: u8,
    b: u32,
}

/// All inline, with padding after `flag`, `small`, `side` and inside `inner`.
#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct Padded {
    flag: bool,
    id: u64,
    small: u16,
    opt: Option<u32>,
    arr: [u16; 3],
    side: Side,
    inner: Inner,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct WithText {
    id: u32,
    text: String,
    vals: Vec<u16>,
}

fn archive<E: Event + 'static>(e: &E) -> Vec<u8> {
    shmbus::rkyv::to_bytes::<shmbus::rkyv::rancor::Error>(e)
        .unwrap()
        .to_vec()
}

fn round_trip<E: Event + Clone + 'static>(tag: &str, events: &[E], exclusive: bool) {
    let tb = TempBus::new(tag);
    let t = tb
        .bus()
        .topic("typed")
        .event::<E>()
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let mut sub = t.subscriber().start(Start::Position(0)).open().unwrap();
    let mut p = if exclusive {
        t.exclusive_publisher().unwrap()
    } else {
        t.publisher().unwrap()
    };
    // A lap of 0xff bytes first, so padding that is not written shows.
    let junk = [0xffu8; 40];
    for _ in 0..600 {
        p.send_bytes(E::TYPE_ID, &junk[..]).unwrap();
        assert_eq!(sub.try_recv_bytes().unwrap().unwrap().bytes(), &junk[..]);
    }
    for lap in 0..2000 {
        let e = &events[lap % events.len()];
        p.send(e).unwrap();
        let got = sub.try_recv().unwrap().expect("published");
        assert_eq!(got.bytes(), &archive(e)[..], "event {lap}");
        assert_eq!(got.type_id(), E::TYPE_ID);
    }
}

fn padded(i: u64) -> Padded {
    Padded {
        flag: i % 2 == 0,
        id: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        small: i as u16,
        opt: (i % 3 != 0).then_some(i as u32 ^ 0xdead_beef),
        arr: [i as u16, !(i as u16), 7],
        side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
        inner: Inner {
            a: i as u8,
            b: (i as u32).rotate_left(7),
        },
    }
}

#[test]
fn inline_events_are_archived_in_place_exactly_as_rkyv_archives_them() {
    assert!(Padded::schema().root().is_inline());
    let events: Vec<Padded> = (0..17).map(padded).collect();
    round_trip("typed-inline", &events, false);
    round_trip("typed-inline-x", &events, true);
}

#[test]
fn events_with_strings_and_vectors_take_the_general_path_unchanged() {
    assert!(!WithText::schema().root().is_inline());
    let events: Vec<WithText> = (0..5)
        .map(|i| WithText {
            id: i,
            text: "x".repeat(i as usize * 7),
            vals: (0..i as u16).collect(),
        })
        .collect();
    round_trip("typed-text", &events, false);
    round_trip("typed-text-x", &events, true);
}
