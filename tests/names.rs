//! Name rules at their boundaries: a durable subscriber name is 1 to
//! `shmbus::ring::layout::MAX_NAME` (96) bytes, the room a consumer slot has; a bus name
//! follows the topic-name rules and a bad one is reported as a bus name.

mod common;

use common::TempBus;
use shmbus::ring::layout::MAX_NAME;
use shmbus::{AttachError, Bus, OpenError};

#[test]
fn subscriber_names_of_96_bytes_fit_and_97_do_not() {
    assert_eq!(MAX_NAME, 96);
    let tb = TempBus::new("names");
    let t = tb.bus().topic("t").capacity(4096).open_or_create().unwrap();
    let s = t.subscriber().named(&"n".repeat(MAX_NAME)).open().unwrap();
    drop(s);
    // The name survives in the slot, whole: the same subscriber resumes.
    let again = t.subscriber().named(&"n".repeat(MAX_NAME)).open();
    assert!(again.is_ok());
    for bad in ["".to_string(), "n".repeat(MAX_NAME + 1)] {
        assert!(
            matches!(
                t.subscriber().named(&bad).open(),
                Err(AttachError::InvalidName(_))
            ),
            "{} bytes",
            bad.len()
        );
    }
}

#[test]
fn bad_bus_names_are_called_bus_names() {
    for bad in [".hidden", ".", "..", "", "a/b", &"b".repeat(129)] {
        match Bus::open(bad) {
            Err(e @ OpenError::InvalidBusName(_)) => {
                let msg = e.to_string();
                assert!(msg.contains("bus name"), "{msg}");
                assert!(!msg.contains("topic"), "{msg}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // A bad topic name is still a topic name.
    let tb = TempBus::new("names");
    match tb.bus().topic(".hidden").open_or_create() {
        Err(e @ OpenError::InvalidName(_)) => assert!(e.to_string().contains("topic name")),
        other => panic!("{other:?}"),
    }
}
