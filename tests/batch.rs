//! Batched publishing: `send_batch` and `send_bytes_batch` publish consecutive
//! records with one claim per span, across wraps and span limits.

mod common;

use common::*;
use shmbus::{SendError, Start};

#[test]
fn batches_arrive_whole_in_order_across_wraps_and_span_limits() {
    let tb = TempBus::new("batch");
    let topic = tb
        .bus()
        .topic("b")
        .event::<Msg>()
        .capacity(1 << 14)
        .open_or_create()
        .unwrap();
    let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();
    let mut p = topic.publisher().unwrap();
    // 16 KiB ring, 128-byte records: spans hold at most 32 records, so a batch of 100
    // is split into four claims, and the ring wraps many times.
    let mut seq = 0u64;
    let mut expected_first = 0u64;
    for size in [1usize, 7, 32, 33, 100, 0, 5] {
        let batch: Vec<Msg> = (seq..seq + size as u64).map(|s| msg(0, s)).collect();
        let first = p.send_batch(&batch).unwrap();
        if size > 0 {
            assert_eq!(
                first, expected_first,
                "position of the batch's first record"
            );
        }
        for _ in 0..size {
            let ev = sub.try_recv().unwrap().expect("published");
            assert!(verify(&ev));
            assert_eq!(ev.seq.to_native(), seq);
            assert_eq!(ev.producer.to_native(), 0);
            seq += 1;
        }
        expected_first = sub.position();
        assert!(
            sub.try_recv().unwrap().is_none(),
            "nothing beyond the batch"
        );
    }
    assert_eq!(topic.stats().records, seq);
}

#[test]
fn a_span_shares_one_timestamp() {
    let tb = TempBus::new("batchts");
    let topic = tb
        .bus()
        .topic("raw")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();
    let mut p = topic.publisher().unwrap();
    let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1 + i as usize * 3]).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|v| v.as_slice()).collect();
    p.send_bytes_batch(9, &refs).unwrap();
    let mut stamps = Vec::new();
    for want in &payloads {
        let ev = sub.try_recv_bytes().unwrap().unwrap();
        assert_eq!(ev.bytes(), want.as_slice());
        assert_eq!(ev.type_id(), 9);
        stamps.push(ev.timestamp());
    }
    assert!(stamps.iter().all(|&t| t == stamps[0] && t > 0));
}

#[test]
fn an_oversized_member_rejects_the_whole_batch() {
    let tb = TempBus::new("batchbig");
    let topic = tb
        .bus()
        .topic("raw")
        .capacity(1 << 14)
        .open_or_create()
        .unwrap();
    let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();
    let mut p = topic.publisher().unwrap();
    let big = vec![0u8; topic.max_payload() + 1];
    let r = p.send_bytes_batch(1, &[b"ok", &big, b"ok too"]);
    assert!(matches!(r, Err(SendError::TooLarge { .. })), "{r:?}");
    assert!(sub.try_recv_bytes().unwrap().is_none(), "nothing published");
    assert_eq!(p.send_bytes_batch(1, &[]).unwrap(), topic.tail());
}
