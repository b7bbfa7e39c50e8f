//! `shmbus::schema::encode`: JSON -> rkyv archive with the schema alone, checked against
//! what rkyv itself writes for derived event types.

use proptest::prelude::*;
use shmbus::rkyv::rancor::Error as RkyvError;
use shmbus::rkyv::util::AlignedVec;
use shmbus::schema::decode::render_json;
use shmbus::schema::encode::{from_json, FromJsonErrorKind};
use shmbus::Event;

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Buy,
    Sell = 5,
    Hold,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct Leg {
    id: u16,
    note: Option<String>,
    flag: bool,
    side: Side,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct Order {
    b: bool,
    u8_: u8,
    u16_: u16,
    u32_: u32,
    u64_: u64,
    i8_: i8,
    i16_: i16,
    i32_: i32,
    i64_: i64,
    f32_: f32,
    f64_: f64,
    c: char,
    symbol: String,
    venue: String,
    bytes: Vec<u8>,
    some: Option<u32>,
    text: Option<String>,
    leg: Leg,
    legs: Vec<Leg>,
    maybe_leg: Option<Leg>,
    arr: [i16; 3],
    bytes_arr: [u8; 4],
    strs: [String; 2],
    nums: Vec<u64>,
    words: Vec<String>,
    grid: Vec<Vec<i32>>,
    size: usize,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct Tiny {
    price: f64,
    qty: u32,
}

fn archive<T: Event>(value: &T) -> AlignedVec {
    shmbus::rkyv::to_bytes::<RkyvError>(value).expect("rkyv serialises")
}

fn render(schema: &shmbus::schema::Schema, bytes: &[u8]) -> String {
    let mut json = String::new();
    render_json(schema, bytes, &mut json).expect("renders");
    json
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell), Just(Side::Hold)]
}

fn text() -> impl Strategy<Value = String> {
    // Inline (<= 8 bytes) and out-of-line strings, with escapes and non-ASCII.
    prop_oneof![
        "[a-z]{0,8}",
        "[ -~]{9,40}",
        any::<String>(),
        Just("\"\\\n\t\u{1}é😀".to_string()),
    ]
}

fn leg() -> impl Strategy<Value = Leg> {
    (
        any::<u16>(),
        proptest::option::of(text()),
        any::<bool>(),
        side(),
    )
        .prop_map(|(id, note, flag, side)| Leg {
            id,
            note,
            flag,
            side,
        })
}

prop_compose! {
    fn order()(
        ints in (any::<bool>(), any::<u8>(), any::<u16>(), any::<u32>(), any::<u64>(),
                 any::<i8>(), any::<i16>(), any::<i32>(), any::<i64>()),
        f32_ in any::<f32>().prop_filter("finite", |f| f.is_finite()),
        f64_ in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        c in any::<char>(),
        strings in (text(), text(), proptest::collection::vec(any::<u8>(), 0..40),
                    proptest::option::of(any::<u32>()), proptest::option::of(text())),
        legs in (leg(), proptest::collection::vec(leg(), 0..4), proptest::option::of(leg())),
        arrays in (any::<[i16; 3]>(), any::<[u8; 4]>(), [text(), text()]),
        vecs in (proptest::collection::vec(any::<u64>(), 0..5),
                 proptest::collection::vec(text(), 0..4),
                 proptest::collection::vec(proptest::collection::vec(any::<i32>(), 0..3), 0..3)),
        size in any::<u32>(),
    ) -> Order {
        let (b, u8_, u16_, u32_, u64_, i8_, i16_, i32_, i64_) = ints;
        let (symbol, venue, bytes, some, text) = strings;
        let (leg, legs, maybe_leg) = legs;
        let (arr, bytes_arr, strs) = arrays;
        let (nums, words, grid) = vecs;
        Order {
            b, u8_, u16_, u32_, u64_, i8_, i16_, i32_, i64_, f32_, f64_, c,
            symbol, venue, bytes, some, text, leg, legs, maybe_leg, arr, bytes_arr, strs,
            nums, words, grid, size: size as usize,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// from_json(render_json(archive(x))) is rkyv's own archive of x, byte for byte, so
    /// it validates and deserialises back to x.
    #[test]
    fn render_then_encode_round_trips(x in order()) {
        let schema = Order::schema();
        let rkyv_bytes = archive(&x);
        let json = render(schema, &rkyv_bytes);
        let encoded = from_json(schema, &json).map_err(|e| {
            TestCaseError::fail(format!("{e} in {json}"))
        })?;
        let back = shmbus::rkyv::from_bytes::<Order, RkyvError>(&encoded)
            .map_err(|e| TestCaseError::fail(format!("does not validate: {e}")))?;
        prop_assert_eq!(&back, &x);
        prop_assert_eq!(&encoded[..], &rkyv_bytes[..]);
    }

    /// Arbitrary text never panics: it is an error or an archive that validates.
    #[test]
    fn garbage_never_panics(s in any::<String>()) {
        if let Ok(bytes) = from_json(Order::schema(), &s) {
            prop_assert!(shmbus::rkyv::access::<ArchivedOrder, RkyvError>(&bytes).is_ok());
        }
    }

    /// Valid JSON with a byte changed, cut short or spliced is an error or a valid
    /// archive, never a panic.
    #[test]
    fn mutated_json_never_panics(x in order(), at in any::<prop::sample::Index>(),
                                 byte in any::<u8>(), cut in any::<bool>()) {
        let json = render(Order::schema(), &archive(&x));
        let mut b = json.into_bytes();
        let i = at.index(b.len());
        if cut {
            b.truncate(i);
        } else {
            b[i] = byte;
        }
        let s = String::from_utf8_lossy(&b);
        if let Ok(bytes) = from_json(Order::schema(), &s) {
            prop_assert!(shmbus::rkyv::access::<ArchivedOrder, RkyvError>(&bytes).is_ok());
        }
    }
}

#[test]
fn fields_in_any_order_and_whitespace() {
    let bytes = from_json(
        Tiny::schema(),
        " {\n  \"qty\" : 7 ,\r\n\t\"price\": -1.25e2 }\n",
    )
    .unwrap();
    let t = shmbus::rkyv::from_bytes::<Tiny, RkyvError>(&bytes).unwrap();
    assert_eq!(
        t,
        Tiny {
            price: -125.0,
            qty: 7
        }
    );
}

#[test]
fn typed_errors() {
    let kind = |json: &str| from_json(Order::schema(), json).unwrap_err().kind().clone();
    let mut x = render(
        Order::schema(),
        &archive(&Order {
            b: true,
            u8_: 1,
            u16_: 2,
            u32_: 3,
            u64_: 4,
            i8_: -5,
            i16_: -6,
            i32_: -7,
            i64_: -8,
            f32_: 0.5,
            f64_: 1.5,
            c: 'x',
            symbol: "ABC".into(),
            venue: "a longer venue name".into(),
            bytes: vec![1, 2],
            some: None,
            text: Some("t".into()),
            leg: Leg {
                id: 1,
                note: None,
                flag: false,
                side: Side::Sell,
            },
            legs: vec![],
            maybe_leg: None,
            arr: [1, 2, 3],
            bytes_arr: [4; 4],
            strs: ["a".into(), "b".into()],
            nums: vec![9],
            words: vec![],
            grid: vec![vec![1]],
            size: 3,
        }),
    );
    assert!(from_json(Order::schema(), &x).is_ok());
    x = x.replace(r#""side":"Sell""#, r#""side":"Short""#);
    assert_eq!(
        kind(&x),
        FromJsonErrorKind::UnknownVariant {
            name: "Short".into(),
            enum_name: "Side".into(),
            path: "leg.side".into()
        }
    );
    x = x.replace(r#""side":"Short""#, r#""side":"Hold""#);
    let arr = x.replace(r#""arr":[1,2,3]"#, r#""arr":[1,2]"#);
    assert_eq!(
        kind(&arr),
        FromJsonErrorKind::WrongLength {
            expected: 3,
            found: 2,
            path: "arr".into()
        }
    );
    let byte = x.replace(r#""bytes":[1,2]"#, r#""bytes":[1,256]"#);
    assert_eq!(
        kind(&byte),
        FromJsonErrorKind::OutOfRange {
            value: "256".into(),
            kind: "u8".into(),
            path: "bytes[1]".into()
        }
    );
    let neg = x.replace(r#""u64_":4"#, r#""u64_":-4"#);
    assert!(matches!(kind(&neg), FromJsonErrorKind::OutOfRange { .. }));
    let ch = x.replace(r#""c":"x""#, r#""c":"xy""#);
    assert!(matches!(kind(&ch), FromJsonErrorKind::Expected { .. }));
    let missing = x.replace(r#""flag":false,"#, "");
    assert_eq!(
        kind(&missing),
        FromJsonErrorKind::MissingField("leg.flag".into())
    );
    let e = from_json(Order::schema(), &x.replace(r#""u8_":1"#, r#""u8_":true"#)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(r#"expected a number for "u8_" at column "#),
        "{e}"
    );
}
