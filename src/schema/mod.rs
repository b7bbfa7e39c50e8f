//! Schemas: what an event's rkyv archive looks like, stored next to the events so that
//! tools can decode them without the producer's Rust types.
//!
//! A [`Schema`] is a type name and a tree of [`Kind`]s. Struct kinds list their fields
//! with the byte offset of each field inside the *archived* value (taken with
//! `core::mem::offset_of!` on the rkyv-generated `Archived…` type by
//! `#[derive(shmbus::Event)]`), so the decoder never has to guess rkyv's layout of a
//! struct. Layouts of the built-in kinds (strings, vecs, options, arrays) follow rkyv 0.8
//! with default features (little-endian, aligned, 32-bit relative pointers); they are
//! fixed in [`Kind::size`] / [`Kind::align`], and the derive checks them against
//! `size_of`/`align_of` of the real archived types when it builds a schema.
//!
//! Decoding values with a schema lives in [`crate::schema::decode`] ([`read_field`],
//! [`render_json`], [`Value`]).
//!
//! # Stored form
//!
//! [`Schema::encode`] writes a versioned little-endian byte string; [`Schema::decode`]
//! reads it back, rejecting anything that is not exactly what `encode` would write for
//! a valid schema (so `encode(decode(b)) == b` whenever `decode(b)` succeeds).
//!
//! | offset | size | field                                      |
//! |-------:|-----:|--------------------------------------------|
//! | 0      | 4    | magic `b"SHSC"`                            |
//! | 4      | 2    | format version, [`FORMAT_VERSION`] (1)     |
//! | 6      | 2    | flags, must be 0                           |
//! | 8      | …    | type name: `str`                           |
//! | …      | …    | root kind: `kind`                          |
//!
//! `str` is a `u16` byte length (1..=65535) followed by UTF-8 bytes. `kind` is a `u8`
//! tag followed by the tag's body:
//!
//! | tag   | kind                          | body                                                         |
//! |------:|-------------------------------|--------------------------------------------------------------|
//! | 1     | `bool`                        | —                                                            |
//! | 2..=5 | `u8`, `u16`, `u32`, `u64`     | —                                                            |
//! | 6..=9 | `i8`, `i16`, `i32`, `i64`     | —                                                            |
//! | 10,11 | `f32`, `f64`                  | —                                                            |
//! | 12    | `char`                        | —                                                            |
//! | 13    | `String`                      | —                                                            |
//! | 14    | bytes (`Vec<u8>`)             | —                                                            |
//! | 15    | `[T; N]`                      | `u32` N, `kind` T                                            |
//! | 16    | `Option<T>`                   | `kind` T                                                     |
//! | 17    | `Vec<T>`                      | `kind` T                                                     |
//! | 18    | struct                        | `str` name, `u32` size, `u32` align, `u16` n, n × (`str` name, `u32` offset, `kind`) |
//! | 19    | unit-only enum                | `str` name, `u16` n (1..=256), n × (`u8` tag, `str` name)    |
//!
//! Nesting is limited to [`MAX_DEPTH`] kinds, so decoding recurses a bounded number of
//! times; every count is checked against the bytes left before anything is allocated
//! for it.

use std::collections::HashSet;
use std::fmt;

pub mod decode;
pub mod encode;

pub use decode::{read_field, render_json, Composite, DecodeError, Value};
pub use encode::{from_json, FromJsonError, FromJsonErrorKind};

/// Magic bytes at the start of an encoded schema.
pub const MAGIC: [u8; 4] = *b"SHSC";

/// Version of the stored schema format written by [`Schema::encode`].
pub const FORMAT_VERSION: u16 = 1;

/// Deepest nesting of kinds a schema may have (the root counts as 1).
pub const MAX_DEPTH: usize = 32;

/// Largest alignment a struct kind may declare.
pub const MAX_ALIGN: u32 = 4096;

/// FNV-1a 64-bit hash of `bytes`; usable in `const` context (e.g. for `Event::TYPE_ID`).
///
/// # Examples
///
/// ```
/// assert_eq!(shmbus::schema::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(shmbus::schema::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The shape of a value inside an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `bool` (1 byte, 0 or 1).
    Bool,
    /// `u8`.
    U8,
    /// `u16` (little-endian).
    U16,
    /// `u32` (little-endian).
    U32,
    /// `u64` (little-endian).
    U64,
    /// `i8`.
    I8,
    /// `i16` (little-endian).
    I16,
    /// `i32` (little-endian).
    I32,
    /// `i64` (little-endian).
    I64,
    /// `f32` (little-endian).
    F32,
    /// `f64` (little-endian).
    F64,
    /// `char` (a little-endian `u32` Unicode scalar value).
    Char,
    /// `String` (rkyv `ArchivedString`: 8 bytes, inline up to 8 bytes, else out of line).
    String,
    /// `Vec<u8>` (rkyv `ArchivedVec<u8>`: relative pointer + length).
    Bytes,
    /// `[T; N]`: `len` elements of `elem`, inline.
    Array {
        /// The element kind.
        elem: Box<Kind>,
        /// The number of elements.
        len: u32,
    },
    /// `Option<T>` (rkyv `ArchivedOption`: a `u8` tag, then `T` at its alignment).
    Option(Box<Kind>),
    /// `Vec<T>` (rkyv `ArchivedVec<T>`: relative pointer + length).
    Vec(Box<Kind>),
    /// A struct with named fields.
    Struct(StructDef),
    /// A unit-only enum (archived as its `u8` discriminant).
    Enum(EnumDef),
}

/// A struct kind: name, archived size and alignment, and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructDef {
    /// The struct's name.
    pub name: String,
    /// `size_of` the archived struct.
    pub size: u32,
    /// `align_of` the archived struct.
    pub align: u32,
    /// The fields, in declaration order.
    pub fields: Vec<Field>,
}

/// One field of a struct kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Byte offset of the field inside the archived struct.
    pub offset: u32,
    /// The field's kind.
    pub kind: Kind,
}

/// A unit-only enum kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumDef {
    /// The enum's name.
    pub name: String,
    /// The variants, in declaration order.
    pub variants: Vec<Variant>,
}

/// One variant of an enum kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The archived tag byte (the variant's discriminant).
    pub tag: u8,
    /// The variant's name.
    pub name: String,
}

impl EnumDef {
    /// The name of the variant whose archived tag is `tag`.
    pub fn variant_name(&self, tag: u8) -> Option<&str> {
        self.variants
            .iter()
            .find(|v| v.tag == tag)
            .map(|v| v.name.as_str())
    }
}

const fn round_up(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

impl Kind {
    /// Archived (size, align), or `None` if the size overflows `u32` or an alignment
    /// is not a power of two.
    fn layout(&self) -> Option<(u32, u32)> {
        Some(match self {
            Kind::Bool | Kind::U8 | Kind::I8 | Kind::Enum(_) => (1, 1),
            Kind::U16 | Kind::I16 => (2, 2),
            Kind::U32 | Kind::I32 | Kind::F32 | Kind::Char => (4, 4),
            Kind::U64 | Kind::I64 | Kind::F64 => (8, 8),
            Kind::String | Kind::Bytes | Kind::Vec(_) => (8, 4),
            Kind::Array { elem, len } => {
                let (size, align) = elem.layout()?;
                (size.checked_mul(*len)?, align)
            }
            Kind::Option(inner) => {
                let (size, align) = inner.layout()?;
                // `#[repr(u8)] enum { None, Some(T) }`: tag, then T at its alignment.
                let payload = round_up(1, u64::from(align));
                let total = round_up(payload + u64::from(size), u64::from(align));
                (u32::try_from(total).ok()?, align)
            }
            Kind::Struct(s) => {
                if !s.align.is_power_of_two() {
                    return None;
                }
                (s.size, s.align)
            }
        })
    }

    /// Whether the archived value is all inline, with nothing out of line: its size
    /// is then always [`Kind::size`] (no strings or vectors anywhere inside).
    pub fn is_inline(&self) -> bool {
        match self {
            Kind::String | Kind::Bytes | Kind::Vec(_) => false,
            Kind::Array { elem, .. } => elem.is_inline(),
            Kind::Option(inner) => inner.is_inline(),
            Kind::Struct(s) => s.fields.iter().all(|f| f.kind.is_inline()),
            _ => true,
        }
    }

    /// `size_of` the archived value. Exact for kinds inside a [`Schema`] (which are
    /// validated); `u32::MAX` for a hand-built kind whose size overflows.
    pub fn size(&self) -> u32 {
        self.layout().map_or(u32::MAX, |(size, _)| size)
    }

    /// `align_of` the archived value (see [`Kind::size`]).
    pub fn align(&self) -> u32 {
        self.layout().map_or(1, |(_, align)| align)
    }

    /// The kind's tag in the stored form.
    fn tag(&self) -> u8 {
        match self {
            Kind::Bool => 1,
            Kind::U8 => 2,
            Kind::U16 => 3,
            Kind::U32 => 4,
            Kind::U64 => 5,
            Kind::I8 => 6,
            Kind::I16 => 7,
            Kind::I32 => 8,
            Kind::I64 => 9,
            Kind::F32 => 10,
            Kind::F64 => 11,
            Kind::Char => 12,
            Kind::String => 13,
            Kind::Bytes => 14,
            Kind::Array { .. } => 15,
            Kind::Option(_) => 16,
            Kind::Vec(_) => 17,
            Kind::Struct(_) => 18,
            Kind::Enum(_) => 19,
        }
    }

    fn primitive(tag: u8) -> Option<Kind> {
        Some(match tag {
            1 => Kind::Bool,
            2 => Kind::U8,
            3 => Kind::U16,
            4 => Kind::U32,
            5 => Kind::U64,
            6 => Kind::I8,
            7 => Kind::I16,
            8 => Kind::I32,
            9 => Kind::I64,
            10 => Kind::F32,
            11 => Kind::F64,
            12 => Kind::Char,
            13 => Kind::String,
            14 => Kind::Bytes,
            _ => return None,
        })
    }

    /// Checks this node, assuming its children are already valid.
    fn check_node(&self) -> Result<(), SchemaErrorKind> {
        match self {
            Kind::Array { elem, len } => {
                if *len > 0 && elem.size() == 0 {
                    return Err(SchemaErrorKind::ZeroSizedElements);
                }
                self.layout().ok_or(SchemaErrorKind::LayoutOverflow)?;
            }
            Kind::Vec(elem) if elem.size() == 0 => {
                return Err(SchemaErrorKind::ZeroSizedElements);
            }
            Kind::Option(_) => {
                self.layout().ok_or(SchemaErrorKind::LayoutOverflow)?;
            }
            Kind::Struct(s) => {
                check_name(&s.name)?;
                if !s.align.is_power_of_two() || s.align > MAX_ALIGN {
                    return Err(SchemaErrorKind::BadAlign(s.align));
                }
                if s.size % s.align != 0 {
                    return Err(SchemaErrorKind::BadSize(s.size));
                }
                if s.fields.len() > usize::from(u16::MAX) {
                    return Err(SchemaErrorKind::TooMany);
                }
                let mut names = HashSet::with_capacity(s.fields.len());
                for f in &s.fields {
                    check_name(&f.name)?;
                    if f.name.contains('.') {
                        return Err(SchemaErrorKind::BadName(f.name.clone()));
                    }
                    if !names.insert(f.name.as_str()) {
                        return Err(SchemaErrorKind::DuplicateName(f.name.clone()));
                    }
                    let (size, align) = f.kind.layout().ok_or(SchemaErrorKind::LayoutOverflow)?;
                    let end = u64::from(f.offset) + u64::from(size);
                    if end > u64::from(s.size) {
                        return Err(SchemaErrorKind::FieldOutOfRange(f.name.clone()));
                    }
                    if f.offset % align != 0 || align > s.align {
                        return Err(SchemaErrorKind::MisalignedField(f.name.clone()));
                    }
                }
            }
            Kind::Enum(e) => {
                check_name(&e.name)?;
                if e.variants.is_empty() || e.variants.len() > 256 {
                    return Err(SchemaErrorKind::BadVariantCount(e.variants.len()));
                }
                let mut tags = [false; 256];
                let mut names = HashSet::with_capacity(e.variants.len());
                for v in &e.variants {
                    check_name(&v.name)?;
                    if std::mem::replace(&mut tags[usize::from(v.tag)], true) {
                        return Err(SchemaErrorKind::DuplicateTag(v.tag));
                    }
                    if !names.insert(v.name.as_str()) {
                        return Err(SchemaErrorKind::DuplicateName(v.name.clone()));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Validates the whole tree (post-order), `depth` being this node's depth.
    fn check_tree(&self, depth: usize) -> Result<(), SchemaErrorKind> {
        if depth > MAX_DEPTH {
            return Err(SchemaErrorKind::TooDeep);
        }
        match self {
            Kind::Array { elem, .. } | Kind::Option(elem) | Kind::Vec(elem) => {
                elem.check_tree(depth + 1)?;
            }
            Kind::Struct(s) => {
                for f in &s.fields {
                    f.kind.check_tree(depth + 1)?;
                }
            }
            _ => {}
        }
        self.check_node()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            Kind::Array { elem, len } => {
                out.extend_from_slice(&len.to_le_bytes());
                elem.encode_into(out);
            }
            Kind::Option(elem) | Kind::Vec(elem) => elem.encode_into(out),
            Kind::Struct(s) => {
                put_str(out, &s.name);
                out.extend_from_slice(&s.size.to_le_bytes());
                out.extend_from_slice(&s.align.to_le_bytes());
                // Validated: at most u16::MAX fields.
                out.extend_from_slice(&(s.fields.len() as u16).to_le_bytes());
                for f in &s.fields {
                    put_str(out, &f.name);
                    out.extend_from_slice(&f.offset.to_le_bytes());
                    f.kind.encode_into(out);
                }
            }
            Kind::Enum(e) => {
                put_str(out, &e.name);
                // Validated: 1..=256 variants.
                out.extend_from_slice(&(e.variants.len() as u16).to_le_bytes());
                for v in &e.variants {
                    out.push(v.tag);
                    put_str(out, &v.name);
                }
            }
            _ => {}
        }
    }
}

/// Rust-like spelling of the kind, e.g. `Option<[u8; 4]>`.
impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Bool => f.write_str("bool"),
            Kind::U8 => f.write_str("u8"),
            Kind::U16 => f.write_str("u16"),
            Kind::U32 => f.write_str("u32"),
            Kind::U64 => f.write_str("u64"),
            Kind::I8 => f.write_str("i8"),
            Kind::I16 => f.write_str("i16"),
            Kind::I32 => f.write_str("i32"),
            Kind::I64 => f.write_str("i64"),
            Kind::F32 => f.write_str("f32"),
            Kind::F64 => f.write_str("f64"),
            Kind::Char => f.write_str("char"),
            Kind::String => f.write_str("String"),
            Kind::Bytes => f.write_str("Vec<u8>"),
            Kind::Array { elem, len } => write!(f, "[{elem}; {len}]"),
            Kind::Option(elem) => write!(f, "Option<{elem}>"),
            Kind::Vec(elem) => write!(f, "Vec<{elem}>"),
            Kind::Struct(s) => f.write_str(&s.name),
            Kind::Enum(e) => f.write_str(&e.name),
        }
    }
}

fn check_name(name: &str) -> Result<(), SchemaErrorKind> {
    if name.is_empty() || name.len() > usize::from(u16::MAX) {
        return Err(SchemaErrorKind::BadName(name.chars().take(64).collect()));
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Validated: 1..=u16::MAX bytes.
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A path to a field of a schema's root struct, resolved by [`Schema::field`], for
/// [`read_field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    path: String,
    offset: u32,
    kind: Kind,
}

impl FieldRef {
    /// The dotted path this reference was resolved from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Byte offset of the field from the start of the archived root value.
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// The field's kind.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }
}

/// The schema of an event type: its name and the layout of its archived value.
///
/// Built by `#[derive(shmbus::Event)]` (see `Event::schema`), or read back from its
/// stored form with [`Schema::decode`]. Every `Schema` is valid: sizes fit, offsets are
/// inside their structs, names are unique, nesting is at most [`MAX_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    type_name: String,
    root: Kind,
    root_size: u32,
    root_align: u32,
}

impl Schema {
    /// A schema for the type `type_name` whose archived value has the kind `root`.
    ///
    /// # Errors
    ///
    /// If the kind tree is not valid (see [`SchemaErrorKind`]); the error has no byte
    /// offset.
    pub fn new(type_name: impl Into<String>, root: Kind) -> Result<Schema, SchemaError> {
        let type_name = type_name.into();
        let err = |kind| SchemaError { offset: None, kind };
        check_name(&type_name).map_err(err)?;
        root.check_tree(1).map_err(err)?;
        let (root_size, root_align) = root.layout().ok_or(err(SchemaErrorKind::LayoutOverflow))?;
        Ok(Schema {
            type_name,
            root,
            root_size,
            root_align,
        })
    }

    /// The event type's name.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The kind of the archived root value (a struct or enum for derived events).
    pub fn root(&self) -> &Kind {
        &self.root
    }

    /// `size_of` the archived root value. The root sits at the end of an rkyv payload,
    /// at `payload.len() - root_size`.
    pub fn root_size(&self) -> u32 {
        self.root_size
    }

    /// `align_of` the archived root value.
    pub fn root_align(&self) -> u32 {
        self.root_align
    }

    /// The fields of the root struct (empty if the root is not a struct).
    pub fn fields(&self) -> &[Field] {
        match &self.root {
            Kind::Struct(s) => &s.fields,
            _ => &[],
        }
    }

    /// Resolves a dotted field path (`"price"`, `"order.side"`) through nested structs.
    ///
    /// Returns `None` if a component is missing or descends into a non-struct.
    pub fn field(&self, path: &str) -> Option<FieldRef> {
        let mut kind = &self.root;
        let mut offset = 0u32;
        for part in path.split('.') {
            let Kind::Struct(s) = kind else {
                return None;
            };
            let field = s.fields.iter().find(|f| f.name == part)?;
            // Validated: nested offsets stay inside the root, whose size is a u32.
            offset = offset.checked_add(field.offset)?;
            kind = &field.kind;
        }
        Some(FieldRef {
            path: path.to_owned(),
            offset,
            kind: kind.clone(),
        })
    }

    /// The stored form (see the module docs for the byte layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        put_str(&mut out, &self.type_name);
        self.root.encode_into(&mut out);
        out
    }

    /// Reads the stored form written by [`Schema::encode`].
    ///
    /// Never panics; allocates at most a small multiple of `bytes.len()`.
    ///
    /// # Errors
    ///
    /// A [`SchemaError`] saying what is wrong and at which byte: bad magic, unknown
    /// version, truncation, unknown kind tags, invalid names, inconsistent layouts,
    /// nesting deeper than [`MAX_DEPTH`], or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Schema, SchemaError> {
        let mut r = ByteReader { bytes, pos: 0 };
        let magic = r.take(4)?;
        if magic != MAGIC {
            return Err(r.err_at(0, SchemaErrorKind::BadMagic));
        }
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(r.err_at(4, SchemaErrorKind::UnsupportedVersion(version)));
        }
        let flags = r.u16()?;
        if flags != 0 {
            return Err(r.err_at(6, SchemaErrorKind::BadFlags(flags)));
        }
        let name_at = r.pos;
        let type_name = r.str()?;
        check_name(&type_name).map_err(|k| r.err_at(name_at, k))?;
        let root = r.kind(1)?;
        if r.pos != bytes.len() {
            return Err(r.err_at(r.pos, SchemaErrorKind::TrailingBytes(bytes.len() - r.pos)));
        }
        let (root_size, root_align) = root
            .layout()
            .ok_or(r.err_at(8, SchemaErrorKind::LayoutOverflow))?;
        Ok(Schema {
            type_name,
            root,
            root_size,
            root_align,
        })
    }

    /// FNV-1a 64 of [`Schema::encode`]: changes whenever a name, kind, offset or size
    /// changes.
    pub fn fingerprint(&self) -> u64 {
        fnv1a64(&self.encode())
    }
}

struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    fn err_at(&self, offset: usize, kind: SchemaErrorKind) -> SchemaError {
        SchemaError {
            offset: Some(offset),
            kind,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SchemaError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err_at(
                self.pos,
                SchemaErrorKind::Truncated {
                    needed: n,
                    left: self.bytes.len() - self.pos,
                },
            )),
        }
    }

    fn u8(&mut self) -> Result<u8, SchemaError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, SchemaError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, SchemaError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str(&mut self) -> Result<String, SchemaError> {
        let at = self.pos;
        let len = self.u16()?;
        if len == 0 {
            return Err(self.err_at(at, SchemaErrorKind::BadName(String::new())));
        }
        let b = self.take(usize::from(len))?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| self.err_at(at + 2, SchemaErrorKind::InvalidUtf8))
    }

    fn kind(&mut self, depth: usize) -> Result<Kind, SchemaError> {
        let at = self.pos;
        if depth > MAX_DEPTH {
            return Err(self.err_at(at, SchemaErrorKind::TooDeep));
        }
        let tag = self.u8()?;
        let kind = if let Some(k) = Kind::primitive(tag) {
            k
        } else {
            match tag {
                15 => {
                    let len = self.u32()?;
                    let elem = Box::new(self.kind(depth + 1)?);
                    Kind::Array { elem, len }
                }
                16 => Kind::Option(Box::new(self.kind(depth + 1)?)),
                17 => Kind::Vec(Box::new(self.kind(depth + 1)?)),
                18 => {
                    let name = self.str()?;
                    let size = self.u32()?;
                    let align = self.u32()?;
                    let n = self.u16()?;
                    // No preallocation from an untrusted count: each field consumes
                    // at least 8 bytes, so the vector grows with the input only.
                    let mut fields = Vec::new();
                    for _ in 0..n {
                        let name = self.str()?;
                        let offset = self.u32()?;
                        let kind = self.kind(depth + 1)?;
                        fields.push(Field { name, offset, kind });
                    }
                    Kind::Struct(StructDef {
                        name,
                        size,
                        align,
                        fields,
                    })
                }
                19 => {
                    let name = self.str()?;
                    let n = self.u16()?;
                    let mut variants = Vec::new();
                    if n == 0 || n > 256 {
                        return Err(
                            self.err_at(at, SchemaErrorKind::BadVariantCount(usize::from(n)))
                        );
                    }
                    for _ in 0..n {
                        let tag = self.u8()?;
                        let name = self.str()?;
                        variants.push(Variant { tag, name });
                    }
                    Kind::Enum(EnumDef { name, variants })
                }
                _ => return Err(self.err_at(at, SchemaErrorKind::UnknownKind(tag))),
            }
        };
        kind.check_node().map_err(|k| self.err_at(at, k))?;
        Ok(kind)
    }
}

/// Why a schema is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaErrorKind {
    /// The bytes do not start with [`MAGIC`].
    BadMagic,
    /// The format version is not [`FORMAT_VERSION`].
    UnsupportedVersion(u16),
    /// The reserved flags are not 0.
    BadFlags(u16),
    /// The input ends before a value of `needed` bytes (`left` bytes remain).
    Truncated {
        /// Bytes the value needs.
        needed: usize,
        /// Bytes left in the input.
        left: usize,
    },
    /// Bytes follow the root kind.
    TrailingBytes(usize),
    /// An unknown kind tag.
    UnknownKind(u8),
    /// Kinds nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A name is not UTF-8.
    InvalidUtf8,
    /// A name is empty, too long, or (for fields) contains `.`.
    BadName(String),
    /// Two fields or variants have the same name.
    DuplicateName(String),
    /// Two variants have the same tag.
    DuplicateTag(u8),
    /// An enum has no variants or more than 256.
    BadVariantCount(usize),
    /// More than 65535 fields.
    TooMany,
    /// A struct alignment that is not a power of two up to [`MAX_ALIGN`].
    BadAlign(u32),
    /// A struct size that is not a multiple of its alignment.
    BadSize(u32),
    /// The named field does not fit inside its struct.
    FieldOutOfRange(String),
    /// The named field's offset is not a multiple of its alignment, or its alignment
    /// exceeds the struct's.
    MisalignedField(String),
    /// An array or vector of zero-sized elements (it could claim any number of them).
    ZeroSizedElements,
    /// A size does not fit in `u32`.
    LayoutOverflow,
}

/// An invalid schema: what is wrong and, for [`Schema::decode`], at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    offset: Option<usize>,
    kind: SchemaErrorKind,
}

impl SchemaError {
    /// What is wrong.
    pub fn kind(&self) -> &SchemaErrorKind {
        &self.kind
    }

    /// Byte offset in the decoded input where the offending item starts (`None` for
    /// errors from [`Schema::new`]).
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }
}

impl fmt::Display for SchemaErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SchemaErrorKind as K;
        match self {
            K::BadMagic => write!(f, "bad magic (not a shmbus schema)"),
            K::UnsupportedVersion(v) => write!(f, "unsupported schema format version {v}"),
            K::BadFlags(v) => write!(f, "reserved flags are {v:#x}, not 0"),
            K::Truncated { needed, left } => {
                write!(f, "truncated: needs {needed} bytes, {left} left")
            }
            K::TrailingBytes(n) => write!(f, "{n} trailing bytes after the schema"),
            K::UnknownKind(t) => write!(f, "unknown kind tag {t}"),
            K::TooDeep => write!(f, "kinds nest deeper than {MAX_DEPTH}"),
            K::InvalidUtf8 => write!(f, "name is not UTF-8"),
            K::BadName(n) => write!(f, "invalid name {n:?}"),
            K::DuplicateName(n) => write!(f, "duplicate name {n:?}"),
            K::DuplicateTag(t) => write!(f, "duplicate enum tag {t}"),
            K::BadVariantCount(n) => write!(f, "enum has {n} variants (needs 1..=256)"),
            K::TooMany => write!(f, "more than 65535 fields"),
            K::BadAlign(a) => write!(
                f,
                "struct alignment {a} is not a power of two <= {MAX_ALIGN}"
            ),
            K::BadSize(s) => write!(f, "struct size {s} is not a multiple of its alignment"),
            K::FieldOutOfRange(n) => write!(f, "field {n:?} does not fit in its struct"),
            K::MisalignedField(n) => write!(f, "field {n:?} is misaligned"),
            K::ZeroSizedElements => write!(f, "array or vec of zero-sized elements"),
            K::LayoutOverflow => write!(f, "size overflows u32"),
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(at) => write!(f, "invalid schema at byte {at}: {}", self.kind),
            None => write!(f, "invalid schema: {}", self.kind),
        }
    }
}

impl std::error::Error for SchemaError {}

/// A type that can be a field of an event: it knows its [`Kind`].
///
/// Implemented here for the supported std types and by `#[derive(shmbus::Event)]` for
/// structs and unit-only enums.
///
/// Other field types are a compile error naming the field, e.g.
///
/// ```compile_fail
/// #[shmbus::event]
/// struct Bad {
///     map: std::collections::HashMap<u32, u32>,
/// }
/// ```
///
/// ```compile_fail
/// #[shmbus::event]
/// struct Bad {
///     pair: (u32, u32),
/// }
/// ```
///
/// ```compile_fail
/// #[derive(shmbus::rkyv::Archive, shmbus::rkyv::Serialize)]
/// #[rkyv(crate = shmbus::rkyv)]
/// struct NotAnEvent {
///     x: u32,
/// }
/// #[shmbus::event]
/// struct Bad {
///     inner: NotAnEvent,
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a shmbus event",
    label = "unsupported field type",
    note = "supported: bool, u8..u64, i8..i64, usize, isize, f32, f64, char, String, \
            Vec<T>, Option<T>, [T; N], and types with #[derive(shmbus::Event)]"
)]
pub trait Describe {
    /// The kind of `Self`'s archived form.
    fn describe() -> Kind;
}

macro_rules! describe_prim {
    ($($t:ty => $k:ident),* $(,)?) => {
        $(impl Describe for $t {
            fn describe() -> Kind {
                Kind::$k
            }
        })*
    };
}

describe_prim! {
    bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64,
    char => Char, String => String,
}

/// rkyv archives `usize` as `ArchivedUsize` (32 bits with default features).
impl Describe for usize {
    fn describe() -> Kind {
        match std::mem::size_of::<rkyv::Archived<usize>>() {
            2 => Kind::U16,
            4 => Kind::U32,
            _ => Kind::U64,
        }
    }
}

/// rkyv archives `isize` as `ArchivedIsize` (32 bits with default features).
impl Describe for isize {
    fn describe() -> Kind {
        match std::mem::size_of::<rkyv::Archived<isize>>() {
            2 => Kind::I16,
            4 => Kind::I32,
            _ => Kind::I64,
        }
    }
}

/// `Vec<u8>` is [`Kind::Bytes`]; any other `Vec<T>` is [`Kind::Vec`].
impl<T: Describe> Describe for Vec<T> {
    fn describe() -> Kind {
        match T::describe() {
            Kind::U8 => Kind::Bytes,
            elem => Kind::Vec(Box::new(elem)),
        }
    }
}

impl<T: Describe> Describe for Option<T> {
    fn describe() -> Kind {
        Kind::Option(Box::new(T::describe()))
    }
}

impl<T: Describe, const N: usize> Describe for [T; N] {
    fn describe() -> Kind {
        Kind::Array {
            elem: Box::new(T::describe()),
            len: u32::try_from(N).unwrap_or(u32::MAX),
        }
    }
}

/// Used by `#[derive(shmbus::Event)]`: the field `field_name` of `owner` at `offset`,
/// after checking that [`Describe`] agrees with rkyv on the archived size and alignment.
///
/// # Panics
///
/// If they disagree (e.g. a `#[rkyv(with = …)]` wrapper changed the archived type).
#[doc(hidden)]
pub fn __field<T: Describe + rkyv::Archive>(owner: &str, field_name: &str, offset: usize) -> Field {
    let kind = T::describe();
    check_layout::<T>(owner, field_name, &kind);
    Field {
        name: field_name.to_owned(),
        offset: u32::try_from(offset).unwrap_or(u32::MAX),
        kind,
    }
}

fn check_layout<T: rkyv::Archive>(owner: &str, what: &str, kind: &Kind) {
    let real = (
        std::mem::size_of::<T::Archived>(),
        std::mem::align_of::<T::Archived>(),
    );
    let described = (kind.size() as usize, kind.align() as usize);
    assert!(
        real == described,
        "shmbus: {owner}::{what}: rkyv archives `{}` as {} bytes aligned to {}, \
         but its schema kind `{kind}` says {} aligned to {}",
        std::any::type_name::<T>(),
        real.0,
        real.1,
        described.0,
        described.1,
    );
}

/// Used by `#[derive(shmbus::Event)]`: builds the schema of `T`.
///
/// # Panics
///
/// If the schema is invalid (e.g. nested deeper than [`MAX_DEPTH`]) or disagrees with
/// rkyv's layout; the message names the type.
#[doc(hidden)]
pub fn __schema_of<T: Describe + rkyv::Archive>(type_name: &str) -> Schema {
    let root = T::describe();
    check_layout::<T>(type_name, "<root>", &root);
    match Schema::new(type_name, root) {
        Ok(schema) => schema,
        Err(e) => panic!("shmbus: cannot build the schema of `{type_name}`: {e}"),
    }
}
