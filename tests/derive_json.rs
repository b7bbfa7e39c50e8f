//! `#[derive(shmbus::Event)]` + decoding real rkyv archives with the schema alone.

use proptest::prelude::*;
use shmbus::schema::{read_field, render_json, DecodeError, Kind, Schema, Value};
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
struct Inner {
    id: u16,
    tag: Option<String>,
    flag: bool,
}

// The long-hand form the attribute expands to.
#[derive(
    shmbus::rkyv::Archive, shmbus::rkyv::Serialize, shmbus::rkyv::Deserialize, shmbus::Event,
)]
#[rkyv(crate = shmbus::rkyv)]
#[derive(Debug, Clone, PartialEq)]
struct Everything {
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
    nan: f64,
    inf: f32,
    c: char,
    short: String,
    eight: String,
    long: String,
    empty: String,
    escaped: String,
    bytes_empty: Vec<u8>,
    bytes: Vec<u8>,
    some: Option<u32>,
    none: Option<u64>,
    some_str: Option<String>,
    some_inner: Option<Inner>,
    inner: Inner,
    side: Side,
    sides: Vec<Side>,
    arr: [i16; 3],
    bytes_arr: [u8; 4],
    strs: [String; 2],
    inners: Vec<Inner>,
    nums: Vec<u64>,
    nested_opt: Option<Option<bool>>,
    size: usize,
    r#type: isize,
}

fn everything() -> Everything {
    Everything {
        b: true,
        u8_: 255,
        u16_: 65535,
        u32_: 4_000_000_000,
        u64_: u64::MAX,
        i8_: -128,
        i16_: -300,
        i32_: -70000,
        i64_: i64::MIN,
        f32_: 1.5,
        f64_: -0.1,
        nan: f64::NAN,
        inf: f32::INFINITY,
        c: 'é',
        short: "hi".into(),
        eight: "exactly8".into(),
        long: "a longer string, out of line ✓".into(),
        empty: String::new(),
        escaped: "q\"b\\n\nt\t\u{1}é\u{7f}".into(),
        bytes_empty: vec![],
        bytes: vec![0, 1, 255],
        some: Some(7),
        none: None,
        some_str: Some("ninechars".into()),
        some_inner: Some(Inner {
            id: 9,
            tag: None,
            flag: false,
        }),
        inner: Inner {
            id: 1,
            tag: Some("nested tag string".into()),
            flag: true,
        },
        side: Side::Sell,
        sides: vec![Side::Buy, Side::Hold, Side::Sell],
        arr: [-1, 0, 1],
        bytes_arr: [1, 2, 3, 4],
        strs: ["x".into(), "string number two".into()],
        inners: vec![
            Inner {
                id: 2,
                tag: Some("t".into()),
                flag: true,
            },
            Inner {
                id: 3,
                tag: None,
                flag: false,
            },
        ],
        nums: vec![1, 2, u64::MAX],
        nested_opt: Some(None),
        size: 12345,
        r#type: -5,
    }
}

const EXPECTED: &str = concat!(
    r#"{"b":true,"u8_":255,"u16_":65535,"u32_":4000000000,"u64_":18446744073709551615,"#,
    r#""i8_":-128,"i16_":-300,"i32_":-70000,"i64_":-9223372036854775808,"#,
    r#""f32_":1.5,"f64_":-0.1,"nan":null,"inf":null,"c":"é","#,
    r#""short":"hi","eight":"exactly8","long":"a longer string, out of line ✓","empty":"","#,
    r#""escaped":"q\"b\\n\nt\t\u0001é"#,
    "\u{7f}",
    r#"","bytes_empty":[],"bytes":[0,1,255],"#,
    r#""some":7,"none":null,"some_str":"ninechars","some_inner":{"id":9,"tag":null,"flag":false},"#,
    r#""inner":{"id":1,"tag":"nested tag string","flag":true},"#,
    r#""side":"Sell","sides":["Buy","Hold","Sell"],"arr":[-1,0,1],"bytes_arr":[1,2,3,4],"#,
    r#""strs":["x","string number two"],"#,
    r#""inners":[{"id":2,"tag":"t","flag":true},{"id":3,"tag":null,"flag":false}],"#,
    r#""nums":[1,2,18446744073709551615],"nested_opt":null,"size":12345,"type":-5}"#,
);

fn archive<T: Event>(value: &T) -> Vec<u8> {
    shmbus::rkyv::to_bytes::<shmbus::rkyv::rancor::Error>(value)
        .unwrap()
        .to_vec()
}

fn json(schema: &Schema, payload: &[u8]) -> Result<String, DecodeError> {
    let mut out = String::new();
    render_json(schema, payload, &mut out).map(|()| out)
}

#[test]
fn renders_every_kind_from_the_schema_alone() {
    let payload = archive(&everything());
    assert_eq!(json(Everything::schema(), &payload).unwrap(), EXPECTED);
}

#[test]
fn nested_option_some_some() {
    // `Some(None)` renders as `null` (JSON cannot tell them apart); `Some(Some(x))` as x.
    let mut e = everything();
    e.nested_opt = Some(Some(true));
    let out = json(Everything::schema(), &archive(&e)).unwrap();
    assert!(out.contains(r#""nested_opt":true,"#), "{out}");
    e.nested_opt = None;
    let out = json(Everything::schema(), &archive(&e)).unwrap();
    assert!(out.contains(r#""nested_opt":null,"#), "{out}");
}

#[test]
fn render_appends_and_leaves_output_alone_on_error() {
    let payload = archive(&everything());
    let mut out = String::from("prefix ");
    render_json(Everything::schema(), &payload, &mut out).unwrap();
    assert_eq!(out, format!("prefix {EXPECTED}"));
    let mut out = String::from("prefix ");
    assert!(render_json(Everything::schema(), &payload[..10], &mut out).is_err());
    assert_eq!(out, "prefix ");
}

#[test]
fn schema_survives_encode_decode_and_renders_the_same() {
    let schema = Everything::schema();
    let decoded = Schema::decode(&schema.encode()).unwrap();
    assert_eq!(&decoded, schema);
    assert_eq!(decoded.fingerprint(), schema.fingerprint());
    assert_eq!(decoded.type_name(), "Everything");
    let payload = archive(&everything());
    assert_eq!(json(&decoded, &payload).unwrap(), EXPECTED);
}

#[test]
fn schema_layout_matches_rkyv() {
    let schema = Everything::schema();
    assert_eq!(schema.root_size() as usize, size_of::<ArchivedEverything>());
    assert_eq!(
        schema.root_align() as usize,
        align_of::<ArchivedEverything>()
    );
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.len(), 36);
    assert_eq!(names[0], "b");
    assert_eq!(names[35], "type", "raw identifiers lose their r#");
    let inner = schema.field("inner").unwrap();
    assert_eq!(
        inner.offset() as usize,
        std::mem::offset_of!(ArchivedEverything, inner)
    );
    let tag = schema.field("inner.tag").unwrap();
    assert_eq!(
        tag.offset() as usize,
        std::mem::offset_of!(ArchivedEverything, inner) + std::mem::offset_of!(ArchivedInner, tag)
    );
    assert_eq!(tag.kind(), &Kind::Option(Box::new(Kind::String)));
    assert!(schema.field("inner.nope").is_none());
    assert!(schema.field("b.x").is_none());
    assert!(schema.field("").is_none());
    let Kind::Enum(side) = Side::schema().root() else {
        panic!("Side is an enum");
    };
    let tags: Vec<(u8, &str)> = side
        .variants
        .iter()
        .map(|v| (v.tag, v.name.as_str()))
        .collect();
    assert_eq!(tags, [(0, "Buy"), (5, "Sell"), (6, "Hold")]);
}

#[test]
fn read_field_gives_each_value() {
    let payload = archive(&everything());
    let schema = Everything::schema();
    let expect: Vec<(&str, Value<'_>)> = vec![
        ("b", Value::Bool(true)),
        ("u8_", Value::U64(255)),
        ("u16_", Value::U64(65535)),
        ("u32_", Value::U64(4_000_000_000)),
        ("u64_", Value::U64(u64::MAX)),
        ("i8_", Value::I64(-128)),
        ("i16_", Value::I64(-300)),
        ("i32_", Value::I64(-70000)),
        ("i64_", Value::I64(i64::MIN)),
        ("f32_", Value::F64(1.5)),
        ("f64_", Value::F64(-0.1)),
        ("inf", Value::F64(f64::INFINITY)),
        ("c", Value::Char('é')),
        ("short", Value::Str("hi")),
        ("eight", Value::Str("exactly8")),
        ("long", Value::Str("a longer string, out of line ✓")),
        ("empty", Value::Str("")),
        ("escaped", Value::Str("q\"b\\n\nt\t\u{1}é\u{7f}")),
        ("bytes_empty", Value::Bytes(&[])),
        ("bytes", Value::Bytes(&[0, 1, 255])),
        ("some", Value::U64(7)),
        ("none", Value::Null),
        ("some_str", Value::Str("ninechars")),
        ("inner.id", Value::U64(1)),
        ("inner.tag", Value::Str("nested tag string")),
        ("inner.flag", Value::Bool(true)),
        ("side", Value::Enum("Sell")),
        ("nested_opt", Value::Null),
        ("size", Value::U64(12345)),
        ("type", Value::I64(-5)),
    ];
    for (path, want) in expect {
        let field = schema
            .field(path)
            .unwrap_or_else(|| panic!("no field {path}"));
        let got = read_field(schema, &payload, &field).unwrap();
        assert_eq!(got, want, "field {path}");
    }
    let nan = schema.field("nan").unwrap();
    assert!(matches!(read_field(schema, &payload, &nan), Ok(Value::F64(x)) if x.is_nan()));

    let composites = [
        ("some_inner", r#"{"id":9,"tag":null,"flag":false}"#),
        ("inner", r#"{"id":1,"tag":"nested tag string","flag":true}"#),
        ("sides", r#"["Buy","Hold","Sell"]"#),
        ("arr", "[-1,0,1]"),
        ("bytes_arr", "[1,2,3,4]"),
        ("strs", r#"["x","string number two"]"#),
        ("nums", "[1,2,18446744073709551615]"),
    ];
    for (path, want) in composites {
        let field = schema.field(path).unwrap();
        let Value::Composite(c) = read_field(schema, &payload, &field).unwrap() else {
            panic!("{path} is not a composite");
        };
        // `Option<Inner>` reads as the inner composite.
        let want_kind = match field.kind() {
            Kind::Option(inner) => &**inner,
            k => k,
        };
        assert_eq!(c.kind(), want_kind);
        let mut out = String::new();
        c.render_json(&mut out).unwrap();
        assert_eq!(out, want, "field {path}");
    }
}

#[test]
fn enum_events_render_as_their_variant_name() {
    assert_eq!(
        json(Side::schema(), &archive(&Side::Hold)).unwrap(),
        r#""Hold""#
    );
    assert_eq!(
        json(Side::schema(), &archive(&Side::Buy)).unwrap(),
        r#""Buy""#
    );
    assert_eq!(
        json(Side::schema(), &[7]),
        Err(DecodeError::InvalidEnumTag { offset: 0, tag: 7 })
    );
}

#[test]
fn specific_corruptions_are_typed_errors() {
    let good = archive(&everything());
    let schema = Everything::schema();
    let root = good.len() - schema.root_size() as usize;
    let at = |path: &str| root + schema.field(path).unwrap().offset() as usize;

    let mut p = good.clone();
    p[at("b")] = 2;
    assert_eq!(
        json(schema, &p),
        Err(DecodeError::InvalidBool {
            offset: at("b"),
            byte: 2
        })
    );

    let mut p = good.clone();
    p[at("c")..at("c") + 4].copy_from_slice(&0xd800u32.to_le_bytes());
    assert_eq!(
        json(schema, &p),
        Err(DecodeError::InvalidChar {
            offset: at("c"),
            value: 0xd800
        })
    );

    let mut p = good.clone();
    p[at("none")] = 3;
    assert_eq!(
        json(schema, &p),
        Err(DecodeError::InvalidOptionTag {
            offset: at("none"),
            tag: 3
        })
    );

    // Out-of-line string pointing far outside the payload.
    let mut p = good.clone();
    p[at("long") + 4..at("long") + 8].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(
        json(schema, &p),
        Err(DecodeError::OutOfBounds { .. })
    ));
    // ... and before its start.
    let mut p = good.clone();
    p[at("long") + 4..at("long") + 8].copy_from_slice(&i32::MIN.to_le_bytes());
    assert!(matches!(
        json(schema, &p),
        Err(DecodeError::OutOfBounds { .. })
    ));

    // Vec with a huge length.
    let mut p = good.clone();
    p[at("nums") + 4..at("nums") + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        json(schema, &p),
        Err(DecodeError::OutOfBounds { .. })
    ));

    // Out-of-line string whose length would fit inline.
    let mut p = good.clone();
    p[at("long")..at("long") + 4].copy_from_slice(&0x83u32.to_le_bytes());
    assert_eq!(
        json(schema, &p),
        Err(DecodeError::InvalidString { offset: at("long") })
    );

    // Invalid UTF-8 inline.
    let mut p = good.clone();
    p[at("short")] = 0xc3;
    p[at("short") + 1] = 0x28;
    assert!(matches!(
        json(schema, &p),
        Err(DecodeError::InvalidUtf8 { .. })
    ));

    assert_eq!(
        json(schema, &good[..schema.root_size() as usize - 1]),
        Err(DecodeError::TooShort {
            len: schema.root_size() as usize - 1,
            root_size: schema.root_size()
        })
    );
}

#[derive(
    shmbus::rkyv::Archive, shmbus::rkyv::Serialize, shmbus::rkyv::Deserialize, shmbus::Event,
)]
#[rkyv(crate = shmbus::rkyv)]
struct Strings {
    v: Vec<String>,
}

#[test]
fn pointers_that_reuse_bytes_exceed_the_budget() {
    // A legit archive decodes...
    let legit = archive(&Strings {
        v: vec!["0123456789".into(); 4],
    });
    assert_eq!(
        json(Strings::schema(), &legit).unwrap(),
        r#"{"v":["0123456789","0123456789","0123456789","0123456789"]}"#
    );
    // ... a hand-made one whose four strings share one body does not: such sharing
    // would let a small payload make the decoder do quadratic work.
    let mut p = Vec::new();
    p.extend_from_slice(b"0123456789\0\0"); // body at 0..10
    for i in 0..4i32 {
        let at = 12 + 8 * i;
        p.extend_from_slice(&(0x80u32 | 10).to_le_bytes());
        p.extend_from_slice(&(-at).to_le_bytes());
    }
    let root = p.len() as i32; // 44
    p.extend_from_slice(&(12 - root).to_le_bytes());
    p.extend_from_slice(&4u32.to_le_bytes());
    assert_eq!(
        json(Strings::schema(), &p),
        Err(DecodeError::BudgetExceeded { offset: 20 })
    );
}

#[test]
fn strings_of_every_length_class() {
    // Inline (0..=8 bytes), out of line with a 6-bit length (9..=63) and with the
    // length's high bits in use (64.. bytes, e.g. 300 and 70_000).
    for len in [0, 1, 7, 8, 9, 63, 64, 65, 255, 256, 300, 70_000] {
        let s: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
        assert_eq!(s.len(), len);
        let payload = archive(&Strings {
            v: vec![s.clone(), "y".into()],
        });
        assert_eq!(
            json(Strings::schema(), &payload).unwrap(),
            format!(r#"{{"v":["{s}","y"]}}"#),
            "length {len}"
        );
    }
}

mod v1 {
    #[shmbus::event]
    pub struct Order {
        pub price: u64,
    }
}
mod added {
    #[shmbus::event]
    pub struct Order {
        pub price: u64,
        pub qty: u32,
    }
}
mod renamed {
    #[shmbus::event]
    pub struct Order {
        pub cost: u64,
    }
}
mod retyped {
    #[shmbus::event]
    pub struct Order {
        pub price: i64,
    }
}

#[test]
fn type_ids_and_fingerprints() {
    assert_ne!(Everything::TYPE_ID, Inner::TYPE_ID);
    assert_ne!(
        Everything::schema().fingerprint(),
        Inner::schema().fingerprint()
    );
    assert_eq!(Everything::TYPE_ID, shmbus::schema::fnv1a64(b"Everything"));
    const { assert!(v1::Order::TYPE_ID == added::Order::TYPE_ID) };

    let fps = [
        v1::Order::schema().fingerprint(),
        added::Order::schema().fingerprint(),
        renamed::Order::schema().fingerprint(),
        retyped::Order::schema().fingerprint(),
    ];
    for i in 0..fps.len() {
        for j in 0..i {
            assert_ne!(fps[i], fps[j], "schemas {i} and {j} share a fingerprint");
        }
    }
    // Stable: the same type gives the same schema every time.
    assert!(std::ptr::eq(v1::Order::schema(), v1::Order::schema()));
}

proptest! {
    #[test]
    fn garbage_payloads_are_errors(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let r = json(Everything::schema(), &bytes);
        prop_assert!(r.is_err(), "garbage decoded: {r:?}");
        for f in Everything::schema().fields() {
            let f = Everything::schema().field(&f.name).unwrap();
            let _ = read_field(Everything::schema(), &bytes, &f);
        }
    }

    #[test]
    fn truncated_payloads_are_errors(cut in 1usize..4096, from_front in any::<bool>()) {
        let payload = archive(&everything());
        let cut = cut % payload.len() + 1;
        let short = if from_front { &payload[cut..] } else { &payload[..payload.len() - cut] };
        prop_assert!(json(Everything::schema(), short).is_err());
    }

    #[test]
    fn mutated_payloads_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut payload = archive(&everything());
        for (i, b) in edits {
            let i = i.index(payload.len());
            payload[i] = b;
        }
        let mut out = String::new();
        if render_json(Everything::schema(), &payload, &mut out).is_ok() {
            // The budget bounds the output by the payload size.
            prop_assert!(out.len() <= 16 * payload.len() + 4096);
        }
        let schema = Everything::schema();
        for f in schema.fields() {
            let f = schema.field(&f.name).unwrap();
            if let Ok(Value::Composite(c)) = read_field(schema, &payload, &f) {
                let _ = c.render_json(&mut String::new());
            }
        }
    }
}
