//! The JSON form of a schema: what `shmbus info --format json` prints under `"schema"`
//! and what `shmbus create --schema FILE` reads, so one can be fed to the other.
//!
//! ```json
//! {"type":"Tick","type_id":1234,"fingerprint":5678,"root_size":24,"root_align":8,
//!  "fields":[{"name":"symbol","kind":"String","offset":0,"size":8,"align":4},
//!            {"name":"side","kind":"Side","offset":8,"size":1,"align":1},
//!            {"name":"price","kind":"f64","offset":16,"size":8,"align":8}],
//!  "types":{"Side":{"variants":[{"tag":0,"name":"Buy"},{"tag":1,"name":"Sell"}]}}}
//! ```
//!
//! Kinds are spelled as Rust types: `bool`, `u8`..`u64`, `i8`..`i64`, `f32`, `f64`,
//! `char`, `String`, `Vec<u8>` (bytes), `Vec<T>`, `Option<T>`, `[T; N]`, or the name
//! of a struct or enum defined in `types`. On input only `type` and each field's `name`
//! and `kind` are required: offsets, sizes and alignments left out are laid out in
//! declaration order at each kind's alignment (rkyv's layout of a plain struct);
//! `type_id` defaults to the FNV-1a hash of the type name (as `#[derive(Event)]` makes
//! it), and a `fingerprint`, when given, must match. Fields with a `.` in their name
//! (the nested fields `info` lists after their struct) are skipped on input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shmbus::schema::{fnv1a64, EnumDef, Field, Kind, Schema, StructDef, Variant, MAX_DEPTH};

/// A schema as JSON (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaDoc {
    /// The event type's name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The type id written into every event's header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_id: Option<u64>,
    /// FNV-1a of the stored schema bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<u64>,
    /// Archived size of the root value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_size: Option<u32>,
    /// Archived alignment of the root value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_align: Option<u32>,
    /// The root struct's fields (on output, nested fields follow as `a.b`).
    pub fields: Vec<FieldDoc>,
    /// Structs and enums the kinds name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, TypeDoc>,
}

/// One field.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDoc {
    /// The field's name (`a.b` for a nested field, on output).
    pub name: String,
    /// Its kind, spelled as a Rust type.
    pub kind: String,
    /// Byte offset in its struct (from the root for nested fields, on output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Archived size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Archived alignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<u32>,
}

/// A named struct (with `fields`) or unit-only enum (with `variants`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeDoc {
    /// A struct's archived size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// A struct's archived alignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<u32>,
    /// A struct's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldDoc>>,
    /// An enum's variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<VariantDoc>>,
}

/// An enum variant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDoc {
    /// Its tag (default: its index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u8>,
    /// Its name.
    pub name: String,
}

impl SchemaDoc {
    /// The JSON form of `schema` for a topic whose events carry `type_id`.
    pub fn of(schema: &Schema, type_id: u64) -> SchemaDoc {
        let mut fields = Vec::new();
        flatten(schema.root(), "", 0, &mut fields);
        let mut types = BTreeMap::new();
        if !matches!(schema.root(), Kind::Struct(_)) {
            define(schema.root(), &mut types);
        } else {
            for f in schema.fields() {
                define(&f.kind, &mut types);
            }
        }
        SchemaDoc {
            type_name: schema.type_name().to_string(),
            type_id: Some(type_id),
            fingerprint: Some(schema.fingerprint()),
            root_size: Some(schema.root_size()),
            root_align: Some(schema.root_align()),
            fields,
            types,
        }
    }

    /// The schema and type id this document describes.
    pub fn to_schema(&self) -> Result<(Schema, u64), String> {
        let root = if self.types.contains_key(&self.type_name) {
            parse_kind(&self.type_name, &self.types, 1)?
        } else {
            Kind::Struct(build_struct(
                &self.type_name,
                self.root_size,
                self.root_align,
                &self.fields,
                &self.types,
                1,
            )?)
        };
        let schema = Schema::new(self.type_name.clone(), root).map_err(|e| e.to_string())?;
        if let Some(f) = self.fingerprint {
            if f != schema.fingerprint() {
                return Err(format!(
                    "its fingerprint {f} does not match the schema it describes ({}): a \
                     field, kind, offset or size differs from the type it was taken from \
                     (drop \"fingerprint\" to accept the schema as written)",
                    schema.fingerprint()
                ));
            }
        }
        let type_id = self
            .type_id
            .unwrap_or_else(|| fnv1a64(self.type_name.as_bytes()));
        Ok((schema, type_id))
    }
}

fn flatten(kind: &Kind, prefix: &str, base: u32, out: &mut Vec<FieldDoc>) {
    let Kind::Struct(s) = kind else { return };
    for f in &s.fields {
        let name = if prefix.is_empty() {
            f.name.clone()
        } else {
            format!("{prefix}.{}", f.name)
        };
        let offset = base.saturating_add(f.offset);
        out.push(FieldDoc {
            name: name.clone(),
            kind: f.kind.to_string(),
            offset: Some(offset),
            size: Some(f.kind.size()),
            align: Some(f.kind.align()),
        });
        flatten(&f.kind, &name, offset, out);
    }
}

/// Adds the structs and enums inside `kind` to `types`.
fn define(kind: &Kind, types: &mut BTreeMap<String, TypeDoc>) {
    match kind {
        Kind::Array { elem, .. } | Kind::Option(elem) | Kind::Vec(elem) => define(elem, types),
        Kind::Struct(s) if !types.contains_key(&s.name) => {
            let fields = s.fields.iter().map(|f| FieldDoc {
                name: f.name.clone(),
                kind: f.kind.to_string(),
                offset: Some(f.offset),
                size: Some(f.kind.size()),
                align: Some(f.kind.align()),
            });
            let doc = TypeDoc {
                size: Some(s.size),
                align: Some(s.align),
                fields: Some(fields.collect()),
                variants: None,
            };
            types.insert(s.name.clone(), doc);
            for f in &s.fields {
                define(&f.kind, types);
            }
        }
        Kind::Enum(e) => {
            let variants = e.variants.iter().map(|v| VariantDoc {
                tag: Some(v.tag),
                name: v.name.clone(),
            });
            let doc = TypeDoc {
                variants: Some(variants.collect()),
                ..TypeDoc::default()
            };
            types.insert(e.name.clone(), doc);
        }
        _ => {}
    }
}

fn round_up(n: u64, align: u64) -> u64 {
    n.div_ceil(align.max(1)) * align.max(1)
}

fn build_struct(
    name: &str,
    size: Option<u32>,
    align: Option<u32>,
    fields: &[FieldDoc],
    types: &BTreeMap<String, TypeDoc>,
    depth: usize,
) -> Result<StructDef, String> {
    let mut out = Vec::new();
    let (mut end, mut max_align) = (0u64, 1u32);
    for f in fields.iter().filter(|f| !f.name.contains('.')) {
        let kind = parse_kind(&f.kind, types, depth + 1)
            .map_err(|e| format!("field {:?} of {name}: {e}", f.name))?;
        let offset = match f.offset {
            Some(o) => u64::from(o),
            None => round_up(end, u64::from(kind.align())),
        };
        end = end.max(offset + u64::from(kind.size()));
        max_align = max_align.max(kind.align());
        let offset = u32::try_from(offset).map_err(|_| format!("{name} is too large"))?;
        out.push(Field {
            name: f.name.clone(),
            offset,
            kind,
        });
    }
    let align = align.unwrap_or(max_align);
    let size = match size {
        Some(s) => s,
        None => u32::try_from(round_up(end, u64::from(align)))
            .map_err(|_| format!("{name} is too large"))?,
    };
    Ok(StructDef {
        name: name.to_string(),
        size,
        align,
        fields: out,
    })
}

/// Reads a kind spelled as a Rust type (see the module docs).
fn parse_kind(s: &str, types: &BTreeMap<String, TypeDoc>, depth: usize) -> Result<Kind, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "kinds nest deeper than {MAX_DEPTH} (is {s} recursive?)"
        ));
    }
    let s = s.trim();
    let inner = |pre: &str| s.strip_prefix(pre).and_then(|r| r.strip_suffix('>'));
    Ok(match s {
        "bool" => Kind::Bool,
        "u8" => Kind::U8,
        "u16" => Kind::U16,
        "u32" => Kind::U32,
        "u64" => Kind::U64,
        "i8" => Kind::I8,
        "i16" => Kind::I16,
        "i32" => Kind::I32,
        "i64" => Kind::I64,
        "f32" => Kind::F32,
        "f64" => Kind::F64,
        "char" => Kind::Char,
        "String" => Kind::String,
        "Vec<u8>" | "bytes" => Kind::Bytes,
        _ if inner("Option<").is_some() => Kind::Option(Box::new(parse_kind(
            inner("Option<").unwrap_or_default(),
            types,
            depth + 1,
        )?)),
        _ if inner("Vec<").is_some() => Kind::Vec(Box::new(parse_kind(
            inner("Vec<").unwrap_or_default(),
            types,
            depth + 1,
        )?)),
        _ if s.starts_with('[') && s.ends_with(']') => {
            let body = &s[1..s.len() - 1];
            let (elem, len) = body
                .rsplit_once(';')
                .ok_or_else(|| format!("{s:?} is not an array kind like [u8; 4]"))?;
            let len = len
                .trim()
                .parse()
                .map_err(|_| format!("{s:?}: the length is not a number"))?;
            Kind::Array {
                elem: Box::new(parse_kind(elem, types, depth + 1)?),
                len,
            }
        }
        name => {
            let t = types.get(name).ok_or_else(|| {
                format!(
                    "unknown kind {name:?} (a built-in kind such as u64, f64, String, \
                     Option<T>, Vec<T>, [T; N], or a struct or enum defined in \"types\")"
                )
            })?;
            match (&t.fields, &t.variants) {
                (Some(fields), None) => {
                    Kind::Struct(build_struct(name, t.size, t.align, fields, types, depth)?)
                }
                (None, Some(vs)) => Kind::Enum(EnumDef {
                    name: name.to_string(),
                    variants: vs
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Variant {
                            tag: v.tag.unwrap_or(i as u8),
                            name: v.name.clone(),
                        })
                        .collect(),
                }),
                _ => {
                    return Err(format!(
                        "type {name:?} needs either \"fields\" (a struct) or \"variants\" \
                         (an enum)"
                    ))
                }
            }
        }
    })
}

/// Reads a schema file's text: a schema object, or a whole `shmbus info --format json`
/// line (its `"schema"` is taken).
pub fn parse(text: &str) -> Result<(Schema, u64), String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let v = match v.get("schema") {
        Some(serde_json::Value::Null) => {
            return Err("its \"schema\" is null: that topic carries raw bytes (use --raw)".into())
        }
        Some(s) if v.get("type").is_none() || v.get("topic").is_some() => s.clone(),
        _ => v,
    };
    let doc: SchemaDoc = serde_json::from_value(v).map_err(|e| e.to_string())?;
    doc.to_schema()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[shmbus::event]
    enum Side {
        Buy,
        Sell,
    }

    #[shmbus::event]
    struct Leg {
        venue: String,
        qty: u32,
    }

    #[shmbus::event]
    struct Order {
        id: u64,
        side: Side,
        legs: Vec<Leg>,
        note: Option<String>,
        tags: [u16; 3],
        blob: Vec<u8>,
        first: Leg,
    }

    #[test]
    fn info_output_round_trips_to_the_same_schema() {
        use shmbus::Event;
        let s = Order::schema();
        let text = serde_json::to_string(&SchemaDoc::of(s, Order::TYPE_ID)).unwrap();
        let (back, id) = parse(&text).unwrap();
        assert_eq!(&back, s);
        assert_eq!(id, Order::TYPE_ID);
    }

    #[test]
    fn hand_written_schemas_are_laid_out_like_rkyv() {
        use shmbus::Event;
        let text = r#"{"type":"Leg","fields":[{"name":"venue","kind":"String"},
                       {"name":"qty","kind":"u32"}]}"#;
        let (s, id) = parse(text).unwrap();
        assert_eq!(&s, Leg::schema());
        assert_eq!(id, Leg::TYPE_ID);
    }

    #[test]
    fn bad_schemas_say_why() {
        for (text, why) in [
            ("{", "invalid JSON"),
            (r#"{"type":"X"}"#, "missing field `fields`"),
            (
                r#"{"type":"X","fields":[{"name":"a","kind":"u128"}]}"#,
                "unknown kind",
            ),
            (
                r#"{"type":"X","fields":[{"name":"a","kind":"u8"}],"fingerprint":1}"#,
                "fingerprint",
            ),
            (
                r#"{"type":"X","fields":[],"colour":1}"#,
                "unknown field `colour`",
            ),
            (r#"{"topic":"t","schema":null}"#, "raw bytes"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
