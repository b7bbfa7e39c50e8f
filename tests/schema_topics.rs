//! Topics created from a schema known only at run time (`TopicBuilder::with_schema`):
//! the ring file matches one created by the Rust type, the real type opens it, other
//! types do not, and events published as bytes decode as the type.

mod common;

use common::TempBus;
use shmbus::ring::layout::{HEADER_SIZE, MAX_SCHEMA};
use shmbus::schema::Schema;
use shmbus::{Event, OpenError, Start};

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct Tick {
    symbol: String,
    price: f64,
}

#[shmbus::event]
struct Other {
    x: u32,
}

/// What a tool holding only stored bytes has: the schema decoded, and the type id.
fn decoded_tick_schema() -> Schema {
    Schema::decode(&Tick::schema().encode()).unwrap()
}

/// The header of a ring file with its creation time zeroed (bytes 80..88 of the meta
/// block), the one field two otherwise identical topics differ in.
fn header_without_time(path: &std::path::Path) -> Vec<u8> {
    let mut h = std::fs::read(path).unwrap();
    h.truncate(HEADER_SIZE);
    h[80..88].fill(0);
    h
}

#[test]
fn a_topic_created_from_a_schema_is_the_same_as_one_created_by_the_type() {
    let tb = TempBus::new("schema-same");
    let bus = tb.bus();
    let described = bus
        .topic("described")
        .with_schema(decoded_tick_schema(), Tick::TYPE_ID)
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let typed = bus
        .topic("typed")
        .event::<Tick>()
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    assert_eq!(described.meta().type_id, Tick::TYPE_ID);
    assert_eq!(described.meta().fingerprint, Tick::schema().fingerprint());
    assert_eq!(described.schema(), Some(Tick::schema()));
    let (dp, tp) = (described.path().to_owned(), typed.path().to_owned());
    drop((described, typed));
    let (d, t) = (header_without_time(&dp), header_without_time(&tp));
    let schema_at = HEADER_SIZE - MAX_SCHEMA;
    assert_eq!(d[..96], t[..96], "meta blocks differ");
    assert_eq!(d[schema_at..], t[schema_at..], "schema tables differ");
    assert!(d == t, "ring headers differ");

    // The real type opens it; another type and a different schema under the same id
    // do not.
    bus.topic("described").event::<Tick>().open().unwrap();
    match bus.topic("described").event::<Other>().open() {
        Err(OpenError::TypeMismatch { found, expected }) => {
            assert_eq!(found, "Tick");
            assert_eq!(expected, "Other");
        }
        other => panic!("opened as Other: {other:?}"),
    }
    let impostor = bus
        .topic("impostor")
        .with_schema(Other::schema().clone(), Tick::TYPE_ID)
        .open_or_create()
        .unwrap();
    drop(impostor);
    assert!(matches!(
        bus.topic("impostor").event::<Tick>().open(),
        Err(OpenError::TypeMismatch { .. })
    ));
}

#[test]
fn opening_with_a_schema_checks_the_existing_topic() {
    let tb = TempBus::new("schema-check");
    let bus = tb.bus();
    bus.topic("ticks").event::<Tick>().open_or_create().unwrap();
    bus.topic("others")
        .event::<Other>()
        .open_or_create()
        .unwrap();
    bus.topic("raw").open_or_create().unwrap();

    let t = bus
        .topic("ticks")
        .with_schema(decoded_tick_schema(), Tick::TYPE_ID)
        .open()
        .unwrap();
    assert_eq!(t.meta().type_id, Tick::TYPE_ID);
    for name in ["others", "raw"] {
        match bus
            .topic(name)
            .with_schema(decoded_tick_schema(), Tick::TYPE_ID)
            .open_or_create()
        {
            Err(OpenError::TypeMismatch { expected, .. }) => assert_eq!(expected, "Tick"),
            other => panic!("{name} opened with Tick's schema: {other:?}"),
        }
    }
    // The right schema under another type id is another type.
    assert!(matches!(
        bus.topic("ticks")
            .with_schema(decoded_tick_schema(), Tick::TYPE_ID ^ 1)
            .open(),
        Err(OpenError::TypeMismatch { .. })
    ));
    // Not created by `open`; type id 0 means raw bytes and cannot carry a schema.
    assert!(matches!(
        bus.topic("absent")
            .with_schema(decoded_tick_schema(), Tick::TYPE_ID)
            .open(),
        Err(OpenError::NotFound(_))
    ));
    assert!(matches!(
        bus.topic("zero")
            .with_schema(decoded_tick_schema(), 0)
            .open_or_create(),
        Err(OpenError::InvalidConfig(_))
    ));
    assert!(!bus.ring_path("zero").exists());
    // `.event::<T>()` after `with_schema` means T alone.
    bus.topic("others")
        .with_schema(decoded_tick_schema(), Tick::TYPE_ID)
        .event::<Other>()
        .open()
        .unwrap();
}

#[test]
fn bytes_published_through_a_described_topic_arrive_as_the_type() {
    let tb = TempBus::new("schema-bytes");
    let bus = tb.bus();
    let topic = bus
        .topic("ticks")
        .with_schema(decoded_tick_schema(), Tick::TYPE_ID)
        .open_or_create()
        .unwrap();
    let typed = bus.topic("ticks").event::<Tick>().open().unwrap();
    let mut sub = typed.subscriber().start(Start::Earliest).open().unwrap();
    let mut p = topic.publisher().unwrap();
    let tick = Tick {
        symbol: "ABC".into(),
        price: 101.5,
    };
    let bytes = shmbus::rkyv::to_bytes::<shmbus::event::RkyvError>(&tick).unwrap();
    p.send_bytes(Tick::TYPE_ID, &bytes).unwrap();
    let ev = sub.recv().unwrap();
    assert_eq!(ev.symbol.as_str(), "ABC");
    assert_eq!(ev.price, 101.5);
    let mut json = String::new();
    shmbus::schema::decode::render_json(topic.schema().unwrap(), &bytes, &mut json).unwrap();
    assert_eq!(json, r#"{"symbol":"ABC","price":101.5}"#);
}
