//! Bad input: names, settings, corrupt / truncated / mismatched ring files, oversized
//! and malformed records. Each is a typed error, never a panic.

mod common;

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use shmbus::ring::layout::HEADER_SIZE;
use shmbus::{AttachError, Bus, Mode, OpenError, RecvError, SendError, Start};

#[shmbus::event]
struct Other {
    x: u32,
}

#[test]
fn bad_topic_names_are_rejected() {
    let tb = TempBus::new("names");
    let bus = tb.bus();
    let long = "x".repeat(129);
    for name in [
        "",
        ".hidden",
        "a/b",
        "../escape",
        "sp ace",
        "ümlaut",
        "a\0b",
        long.as_str(),
    ] {
        let r = bus.topic(name).open_or_create();
        assert!(
            matches!(r, Err(OpenError::InvalidName(_))),
            "{name:?} was accepted"
        );
    }
    assert!(bus
        .topic(&"y".repeat(128))
        .capacity(4096)
        .open_or_create()
        .is_ok());
    assert!(matches!(
        Bus::open("../x"),
        Err(OpenError::InvalidBusName(_))
    ));
    assert_eq!(
        std::fs::read_dir(&tb.dir).unwrap().count(),
        1,
        "nothing escaped the bus"
    );
}

#[test]
fn bad_settings_are_rejected() {
    let tb = TempBus::new("settings");
    let bus = tb.bus();
    for cap in [0, 1000, 2048, 1 << 41] {
        assert!(matches!(
            bus.topic("t").capacity(cap).open_or_create(),
            Err(OpenError::InvalidConfig(_))
        ));
    }
    assert!(matches!(
        bus.topic("missing").open(),
        Err(OpenError::NotFound(_))
    ));
}

/// Create a good raw topic, then damage its file with `f` and open it again.
fn damaged(f: impl FnOnce(&std::fs::File, &std::path::Path)) -> OpenError {
    let tb = TempBus::new("damage");
    let bus = tb.bus();
    let t = bus.topic("t").capacity(4096).open_or_create().unwrap();
    let path = t.path().to_path_buf();
    drop(t);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f(&file, &path);
    bus.topic("t")
        .open()
        .expect_err("a damaged ring file was accepted")
}

fn put(file: &std::fs::File, off: u64, bytes: &[u8]) {
    file.write_all_at(bytes, off).unwrap();
}

#[test]
fn corrupt_truncated_and_wrong_version_ring_files_give_typed_errors() {
    assert!(matches!(
        damaged(|f, _| put(f, 0, b"NOTSHMBS")),
        OpenError::BadMagic { .. }
    ));
    assert!(matches!(
        damaged(|f, _| put(f, 8, &99u32.to_le_bytes())),
        OpenError::BadVersion {
            found: 99,
            expected: shmbus::ring::layout::VERSION,
            ..
        }
    ));
    assert!(matches!(
        damaged(|f, _| f.set_len(0).unwrap()),
        OpenError::Truncated { size: 0, .. }
    ));
    assert!(matches!(
        damaged(|f, _| f.set_len(100).unwrap()),
        OpenError::Truncated { size: 100, .. }
    ));
    assert!(matches!(
        damaged(|f, _| f.set_len(HEADER_SIZE as u64 + 100).unwrap()),
        OpenError::Truncated { needed, .. } if needed == HEADER_SIZE as u64 + 4096
    ));
    assert!(matches!(
        damaged(|f, _| put(f, 0, &vec![0u8; HEADER_SIZE + 4096])),
        OpenError::BadMagic { .. }
    ));
    assert!(matches!(
        damaged(|f, _| put(f, 24, &3000u64.to_le_bytes())),
        OpenError::Corrupt { .. }
    ));
    assert!(matches!(
        damaged(|f, _| put(f, 24, &(1u64 << 20).to_le_bytes())),
        OpenError::Truncated { .. }
    ));
    assert!(matches!(
        damaged(|f, _| put(f, 32, &7u32.to_le_bytes())),
        OpenError::Corrupt { .. }
    ));
    assert!(matches!(
        damaged(|f, _| put(f, 88, &u32::MAX.to_le_bytes())),
        OpenError::Corrupt { .. }
    ));
    assert!(matches!(
        damaged(|f, _| put(f, 92, &0u32.to_le_bytes())),
        OpenError::Corrupt { .. }
    ));
    // A creator that never finished: the ready word is not set.
    assert!(matches!(
        damaged(|f, _| put(f, 12, &0u32.to_le_bytes())),
        OpenError::NotReady(_)
    ));
    // Unsafe permissions.
    assert!(matches!(
        damaged(
            |_, p| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap()
        ),
        OpenError::UnsafePermissions { .. }
    ));
}

#[test]
fn corrupt_schema_table_is_a_typed_error() {
    let tb = TempBus::new("schema");
    let bus = tb.bus();
    let t = bus
        .topic("t")
        .event::<Msg>()
        .capacity(4096)
        .open_or_create()
        .unwrap();
    let path = t.path().to_path_buf();
    drop(t);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    put(
        &file,
        shmbus::ring::layout::HEADER_SIZE as u64 - shmbus::ring::layout::MAX_SCHEMA as u64,
        b"garbage!",
    );
    assert!(matches!(
        bus.topic("t").open(),
        Err(OpenError::Corrupt { .. })
    ));
}

#[test]
fn world_writable_bus_directory_is_refused() {
    let tb = TempBus::new("perm");
    std::fs::set_permissions(&tb.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        Bus::open_dir(&tb.dir),
        Err(OpenError::UnsafePermissions { .. })
    ));
    std::fs::set_permissions(&tb.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn created_files_are_private() {
    let tb = TempBus::new("private");
    let t = tb.bus().topic("t").capacity(4096).open_or_create().unwrap();
    let mode = std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn mismatched_capacity_mode_and_type_are_typed_errors() {
    let tb = TempBus::new("mismatch");
    let bus = tb.bus();
    let _t = bus
        .topic("t")
        .event::<Msg>()
        .capacity(8192)
        .open_or_create()
        .unwrap();
    assert!(matches!(
        bus.topic("t").event::<Msg>().capacity(4096).open(),
        Err(OpenError::CapacityMismatch {
            found: 8192,
            requested: 4096
        })
    ));
    assert!(matches!(
        bus.topic("t").event::<Msg>().mode(Mode::Lossy).open(),
        Err(OpenError::ModeMismatch { .. })
    ));
    match bus.topic("t").event::<Other>().open() {
        Err(OpenError::TypeMismatch { found, expected }) => {
            assert_eq!((found.as_str(), expected.as_str()), ("Msg", "Other"));
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    let _raw = bus.topic("raw").capacity(4096).open_or_create().unwrap();
    assert!(matches!(
        bus.topic("raw").event::<Msg>().open(),
        Err(OpenError::TypeMismatch { .. })
    ));
    // A raw handle may open any topic (tools do), and sees its schema.
    assert_eq!(
        bus.topic("t").open().unwrap().schema().unwrap().type_name(),
        "Msg"
    );
}

#[test]
fn oversized_records_and_bad_subscriber_settings_are_rejected() {
    let tb = TempBus::new("sizes");
    let t = tb.bus().topic("t").capacity(4096).open_or_create().unwrap();
    let mut p = t.publisher().unwrap();
    assert_eq!(
        p.send_bytes(0, &[0u8; 1025]),
        Err(SendError::TooLarge {
            len: 1025,
            max: 1024
        })
    );
    assert!(matches!(p.claim(5000), Err(SendError::TooLarge { .. })));
    assert!(p.send_bytes(0, &[0u8; 1024]).is_ok());
    assert!(matches!(
        t.subscriber().named("").open(),
        Err(AttachError::InvalidName(_))
    ));
    assert!(matches!(
        t.subscriber().named(&"n".repeat(97)).open(),
        Err(AttachError::InvalidName(_))
    ));
    assert!(matches!(
        t.subscriber().start(Start::Position(3)).open(),
        Err(AttachError::InvalidPosition(3))
    ));
    assert!(matches!(
        t.subscriber().start(Start::Position(1 << 30)).open(),
        Err(AttachError::InvalidPosition(_))
    ));
    // Overwrite the ring several times with no subscriber, then ask for position 0.
    for _ in 0..40 {
        p.send_bytes(0, &[1u8; 500]).unwrap();
    }
    match t.subscriber().start(Start::Position(0)).open() {
        Err(AttachError::PositionLost {
            requested: 0,
            oldest,
        }) => assert!(oldest > 0),
        other => panic!("expected PositionLost, got {:?}", other.map(|_| ())),
    }
    let s = t
        .subscriber()
        .start(Start::Position(0))
        .accept_loss(true)
        .open()
        .unwrap();
    assert!(s.position() > 0);
}

#[test]
fn malformed_records_give_typed_errors_and_do_not_wedge_the_subscriber() {
    let tb = TempBus::new("records");
    let bus = tb.bus();
    let typed = bus
        .topic("t")
        .event::<Msg>()
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let raw = bus.topic("t").open().unwrap();
    let mut sub = typed.subscriber().open().unwrap();
    let mut rp = raw.publisher().unwrap();
    let mut tp = typed.publisher().unwrap();
    rp.send_bytes(12345, b"not a Msg at all").unwrap();
    rp.send_bytes(<Msg as shmbus::Event>::TYPE_ID, &[0xffu8; 3])
        .unwrap(); // too short for a Msg
    tp.send(&msg(0, 7)).unwrap();
    assert!(matches!(
        sub.try_recv(),
        Err(RecvError::WrongType { found: 12345, .. })
    ));
    assert!(matches!(sub.try_recv(), Err(RecvError::Invalid { .. })));
    assert_eq!(
        sub.try_recv().unwrap().unwrap().seq.to_native(),
        7,
        "reading goes on after bad records"
    );

    // A scribbled record header (length past the end of the lap).
    let pos = tp.send(&msg(0, 8)).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(typed.path())
        .unwrap();
    put(&file, HEADER_SIZE as u64 + pos + 8, &u32::MAX.to_le_bytes());
    assert!(matches!(sub.try_recv(), Err(RecvError::Corrupt { position, .. }) if position == pos));
}

#[test]
fn lossy_subscriber_that_is_lapped_is_told_what_it_missed() {
    let tb = TempBus::new("lossy");
    let t = tb
        .bus()
        .topic("l")
        .event::<Msg>()
        .capacity(4096)
        .lossy()
        .open_or_create()
        .unwrap();
    let mut sub = t.subscriber().open().unwrap();
    let mut p = t.publisher().unwrap();
    for seq in 0..200 {
        p.try_send(&msg(0, seq))
            .expect("lossy producers never wait");
    }
    match sub.try_recv() {
        Err(RecvError::Lagged {
            missed_bytes,
            resumed_at,
        }) => {
            assert!(missed_bytes > 0);
            assert_eq!(resumed_at, sub.position());
        }
        other => panic!(
            "expected Lagged, got {:?}",
            other.map(|o| o.map(|e| e.seq.to_native()))
        ),
    }
    // Then it reads the retained tail in order, up to the last one.
    let mut last = None;
    while let Some(ev) = sub.recv_timeout(Duration::from_millis(10)).unwrap() {
        let s = ev.seq.to_native();
        if let Some(l) = last {
            assert_eq!(s, l + 1);
        }
        last = Some(s);
    }
    assert_eq!(last, Some(199));
}

#[test]
fn dropped_grant_becomes_padding_and_committed_grant_arrives() {
    let tb = TempBus::new("grant");
    let t = tb.bus().topic("g").capacity(4096).open_or_create().unwrap();
    let mut sub = t.subscriber().open().unwrap();
    let mut p = t.publisher().unwrap();
    {
        let mut g = p.claim(10).unwrap();
        g.payload().copy_from_slice(b"abandoned!");
    }
    let mut g = p.claim(5).unwrap();
    g.payload().copy_from_slice(b"kept!");
    g.set_type_id(3);
    let pos = g.commit().unwrap();
    let ev = sub.try_recv_bytes().unwrap().unwrap();
    assert_eq!(
        (ev.position(), ev.type_id(), ev.bytes()),
        (pos, 3, &b"kept!"[..])
    );
    assert!(sub.try_recv_bytes().unwrap().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random bytes over the static header never panic the opener.
    #[test]
    fn random_header_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 96), keep_magic in any::<bool>()) {
        let tb = TempBus::new("fuzz");
        let bus = tb.bus();
        let t = bus.topic("t").capacity(4096).open_or_create().unwrap();
        let path = t.path().to_path_buf();
        drop(t);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let start = if keep_magic { 8 } else { 0 };
        // Leave the ready word alone half the time, so parsing goes past it.
        put(&file, start, &bytes[start as usize..]);
        let _ = bus.topic("t").open();
    }
}
