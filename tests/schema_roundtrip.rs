//! The stored schema format: round trips, hostile input, and hostile payloads against
//! arbitrary schemas.

use proptest::prelude::*;
use shmbus::schema::{
    read_field, render_json, EnumDef, Field, Kind, Schema, SchemaErrorKind, StructDef, Variant,
    MAX_DEPTH,
};

fn round_up(n: u32, a: u32) -> u32 {
    n.div_ceil(a) * a
}

/// Lays fields out like `repr(C)` (as rkyv's archived structs are).
fn layout_struct(name: String, kinds: Vec<(String, Kind)>) -> Kind {
    let mut offset = 0;
    let mut align = 1;
    let mut fields = Vec::new();
    for (name, kind) in kinds {
        offset = round_up(offset, kind.align());
        align = align.max(kind.align());
        fields.push(Field {
            name,
            offset,
            kind: kind.clone(),
        });
        offset += kind.size();
    }
    Kind::Struct(StructDef {
        name,
        size: round_up(offset, align),
        align,
        fields,
    })
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_é]{0,12}"
}

fn leaf() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Bool),
        Just(Kind::U8),
        Just(Kind::U16),
        Just(Kind::U32),
        Just(Kind::U64),
        Just(Kind::I8),
        Just(Kind::I16),
        Just(Kind::I32),
        Just(Kind::I64),
        Just(Kind::F32),
        Just(Kind::F64),
        Just(Kind::Char),
        Just(Kind::String),
        Just(Kind::Bytes),
        (
            name(),
            prop::collection::btree_map(any::<u8>(), name(), 1..6)
        )
            .prop_map(|(n, vs)| {
                // Variant names must be unique too: suffix them with their tag.
                let variants = vs
                    .into_iter()
                    .map(|(tag, name)| Variant {
                        tag,
                        name: format!("{name}{tag}"),
                    })
                    .collect();
                Kind::Enum(EnumDef { name: n, variants })
            }),
    ]
}

/// Arbitrary valid kinds (no zero-sized array/vec elements).
fn kind() -> impl Strategy<Value = Kind> {
    leaf().prop_recursive(5, 48, 6, |inner| {
        let nonzero = inner
            .clone()
            .prop_map(|k| if k.size() == 0 { Kind::U8 } else { k });
        prop_oneof![
            (nonzero.clone(), 0u32..4).prop_map(|(elem, len)| Kind::Array {
                elem: Box::new(elem),
                len
            }),
            inner.clone().prop_map(|k| Kind::Option(Box::new(k))),
            nonzero.prop_map(|k| Kind::Vec(Box::new(k))),
            (name(), prop::collection::vec((name(), inner), 0..6)).prop_map(|(n, fs)| {
                let fs = fs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, k))| (format!("{name}_{i}"), k))
                    .collect();
                layout_struct(n, fs)
            }),
        ]
    })
}

fn schema() -> impl Strategy<Value = Schema> {
    (name(), kind()).prop_map(|(n, k)| Schema::new(n, k).expect("generated schemas are valid"))
}

proptest! {
    #[test]
    fn encode_decode_round_trips(s in schema()) {
        let bytes = s.encode();
        let back = Schema::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.fingerprint(), s.fingerprint());
        prop_assert_eq!(back.root_size(), s.root().size());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(s) = Schema::decode(&bytes) {
            prop_assert_eq!(s.encode(), bytes);
        }
    }

    #[test]
    fn arbitrary_bytes_after_the_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"SHSC\x01\x00\x00\x00".to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(s) = Schema::decode(&bytes) {
            // Decoding is canonical: what decodes re-encodes to the same bytes.
            prop_assert_eq!(s.encode(), bytes);
        }
    }

    #[test]
    fn mutated_encodings_never_panic(
        s in schema(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = s.encode();
        for (i, b, op) in edits {
            let i = i.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok(back) = Schema::decode(&bytes) {
            prop_assert_eq!(back.encode(), bytes);
        }
    }

    #[test]
    fn truncated_or_extended_encodings_are_errors(s in schema(), cut in any::<prop::sample::Index>(), extra in 1u8..=255) {
        let bytes = s.encode();
        let cut = cut.index(bytes.len());
        let err = Schema::decode(&bytes[..cut]).unwrap_err();
        prop_assert!(err.offset().unwrap() <= cut, "{}", err);
        let mut longer = bytes.clone();
        longer.push(extra);
        let err = Schema::decode(&longer).unwrap_err();
        prop_assert_eq!(err.kind(), &SchemaErrorKind::TrailingBytes(1));
        prop_assert_eq!(err.offset(), Some(bytes.len()));
    }

    #[test]
    fn hostile_payloads_never_panic(s in schema(), payload in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut out = String::new();
        let _ = render_json(&s, &payload, &mut out);
        prop_assert!(out.len() <= 64 * payload.len() + 64 * s.root_size() as usize + 4096);
        for f in s.fields() {
            let f = s.field(&f.name).unwrap();
            if let Ok(shmbus::schema::Value::Composite(c)) = read_field(&s, &payload, &f) {
                let _ = c.render_json(&mut String::new());
            }
        }
    }
}

fn header() -> Vec<u8> {
    b"SHSC\x01\x00\x00\x00\x01\x00T".to_vec()
}

#[test]
fn bad_headers() {
    let ok = Schema::new("T", Kind::U8).unwrap().encode();
    assert_eq!(ok, [header(), vec![2]].concat());
    assert_eq!(Schema::decode(&ok).unwrap().root(), &Kind::U8);

    let e = Schema::decode(b"SHSX\x01\x00\x00\x00\x01\x00T\x02").unwrap_err();
    assert_eq!(
        (e.kind(), e.offset()),
        (&SchemaErrorKind::BadMagic, Some(0))
    );
    let e = Schema::decode(b"SHSC\x02\x00\x00\x00\x01\x00T\x02").unwrap_err();
    assert_eq!(
        (e.kind(), e.offset()),
        (&SchemaErrorKind::UnsupportedVersion(2), Some(4))
    );
    let e = Schema::decode(b"SHSC\x01\x00\x01\x00\x01\x00T\x02").unwrap_err();
    assert_eq!(
        (e.kind(), e.offset()),
        (&SchemaErrorKind::BadFlags(1), Some(6))
    );
    let e = Schema::decode(b"SHSC\x01\x00\x00\x00\x00\x00\x02").unwrap_err();
    assert_eq!(e.offset(), Some(8));
    let e = Schema::decode(b"SHSC\x01\x00\x00\x00\x01\x00\xff\x02").unwrap_err();
    assert_eq!(
        (e.kind(), e.offset()),
        (&SchemaErrorKind::InvalidUtf8, Some(10))
    );
    let e = Schema::decode(&[header(), vec![99]].concat()).unwrap_err();
    assert_eq!(
        (e.kind(), e.offset()),
        (&SchemaErrorKind::UnknownKind(99), Some(11))
    );
    assert!(e.to_string().contains("at byte 11"), "{e}");
    assert!(Schema::decode(&[]).is_err());
}

#[test]
fn too_deep_is_rejected_without_recursing_further() {
    // Option<Option<…>> nested far too deep.
    let mut bytes = header();
    bytes.extend(std::iter::repeat_n(16u8, 100_000));
    bytes.push(2);
    let e = Schema::decode(&bytes).unwrap_err();
    assert_eq!(e.kind(), &SchemaErrorKind::TooDeep);
    assert_eq!(e.offset(), Some(11 + MAX_DEPTH));

    // Exactly MAX_DEPTH is fine.
    let mut bytes = header();
    bytes.extend(std::iter::repeat_n(16u8, MAX_DEPTH - 1));
    bytes.push(2);
    Schema::decode(&bytes).unwrap();

    let mut k = Kind::U8;
    for _ in 0..MAX_DEPTH {
        k = Kind::Option(Box::new(k));
    }
    assert_eq!(
        Schema::new("T", k).unwrap_err().kind(),
        &SchemaErrorKind::TooDeep
    );
}

#[test]
fn huge_counts_do_not_allocate_up_front() {
    // A struct claiming 65535 fields, and an array claiming u32::MAX elements, in a few
    // bytes: truncation errors, not allocations.
    let mut bytes = header();
    bytes.extend_from_slice(&[18, 1, 0, b'S', 0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff]);
    let e = Schema::decode(&bytes).unwrap_err();
    assert!(matches!(e.kind(), SchemaErrorKind::Truncated { .. }), "{e}");

    let mut bytes = header();
    bytes.extend_from_slice(&[15, 0xff, 0xff, 0xff, 0xff, 5]);
    let e = Schema::decode(&bytes).unwrap_err();
    assert_eq!(
        (e.kind(), e.offset()),
        (&SchemaErrorKind::LayoutOverflow, Some(11))
    );
}

#[test]
fn invalid_layouts_are_rejected() {
    let field = |name: &str, offset, kind| Field {
        name: name.into(),
        offset,
        kind,
    };
    let st = |size, align, fields| {
        Kind::Struct(StructDef {
            name: "S".into(),
            size,
            align,
            fields,
        })
    };
    let cases = [
        (
            st(16, 8, vec![field("a", 4, Kind::U64)]),
            SchemaErrorKind::MisalignedField("a".into()),
        ),
        (
            st(8, 8, vec![field("a", 8, Kind::U8)]),
            SchemaErrorKind::FieldOutOfRange("a".into()),
        ),
        (st(6, 4, vec![]), SchemaErrorKind::BadSize(6)),
        (st(6, 3, vec![]), SchemaErrorKind::BadAlign(3)),
        (
            st(2, 1, vec![field("a", 0, Kind::U8), field("a", 1, Kind::U8)]),
            SchemaErrorKind::DuplicateName("a".into()),
        ),
        (
            st(1, 1, vec![field("a.b", 0, Kind::U8)]),
            SchemaErrorKind::BadName("a.b".into()),
        ),
        (
            Kind::Vec(Box::new(st(0, 1, vec![]))),
            SchemaErrorKind::ZeroSizedElements,
        ),
        (
            Kind::Array {
                elem: Box::new(st(0, 1, vec![])),
                len: 3,
            },
            SchemaErrorKind::ZeroSizedElements,
        ),
        (
            Kind::Enum(EnumDef {
                name: "E".into(),
                variants: vec![],
            }),
            SchemaErrorKind::BadVariantCount(0),
        ),
        (
            Kind::Enum(EnumDef {
                name: "E".into(),
                variants: vec![
                    Variant {
                        tag: 1,
                        name: "A".into(),
                    },
                    Variant {
                        tag: 1,
                        name: "B".into(),
                    },
                ],
            }),
            SchemaErrorKind::DuplicateTag(1),
        ),
    ];
    for (kind, want) in cases {
        // Rejected when built...
        let e = Schema::new("T", kind.clone()).unwrap_err();
        assert_eq!(e.kind(), &want, "{kind:?}");
        // ... and when decoded (encode the invalid tree by hand through a valid wrapper).
        let mut bytes = header();
        encode_kind(&kind, &mut bytes);
        let e = Schema::decode(&bytes).unwrap_err();
        assert_eq!(e.kind(), &want, "{kind:?}");
        assert_eq!(e.offset(), Some(11));
    }
}

/// Encodes a kind tree without validating it (mirror of the stored format).
fn encode_kind(k: &Kind, out: &mut Vec<u8>) {
    // Borrow the real encoder for a valid stand-in to check our tags line up.
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    match k {
        Kind::U8 => out.push(2),
        Kind::U64 => out.push(5),
        Kind::Array { elem, len } => {
            out.push(15);
            out.extend_from_slice(&len.to_le_bytes());
            encode_kind(elem, out);
        }
        Kind::Vec(elem) => {
            out.push(17);
            encode_kind(elem, out);
        }
        Kind::Struct(s) => {
            out.push(18);
            put_str(out, &s.name);
            out.extend_from_slice(&s.size.to_le_bytes());
            out.extend_from_slice(&s.align.to_le_bytes());
            out.extend_from_slice(&(s.fields.len() as u16).to_le_bytes());
            for f in &s.fields {
                put_str(out, &f.name);
                out.extend_from_slice(&f.offset.to_le_bytes());
                encode_kind(&f.kind, out);
            }
        }
        Kind::Enum(e) => {
            out.push(19);
            put_str(out, &e.name);
            out.extend_from_slice(&(e.variants.len() as u16).to_le_bytes());
            for v in &e.variants {
                out.push(v.tag);
                put_str(out, &v.name);
            }
        }
        other => panic!("encode_kind: add {other:?}"),
    }
}

#[test]
fn hand_encoder_matches_the_real_one() {
    let k = layout_struct(
        "S".into(),
        vec![
            ("a".into(), Kind::U8),
            (
                "b".into(),
                Kind::Array {
                    elem: Box::new(Kind::U64),
                    len: 2,
                },
            ),
            ("c".into(), Kind::Vec(Box::new(Kind::U8))),
        ],
    );
    let mut bytes = header();
    encode_kind(&k, &mut bytes);
    assert_eq!(Schema::new("T", k).unwrap().encode(), bytes);
}

#[test]
fn fnv1a64_known_values() {
    use shmbus::schema::fnv1a64;
    const EMPTY: u64 = fnv1a64(b"");
    assert_eq!(EMPTY, 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}
