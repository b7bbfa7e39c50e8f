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
//! [`render_json`], [`Value`]); encoding JSON into archives in [`crate::schema::encode`].
//! The stored form of a schema (its bytes in ring files and segments) is in `codec`,
//! with its byte table; the derive's side ([`Describe`]) in `describe`.
//!

use std::collections::HashSet;
use std::fmt;

pub(crate) mod archive;
mod codec;
pub mod decode;
mod describe;
pub mod encode;

pub use codec::{FORMAT_VERSION, MAGIC};
pub use decode::{read_field, render_json, Composite, DecodeError, Value};
pub use describe::*;
pub use encode::{from_json, FromJsonError, FromJsonErrorKind};

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

    /// FNV-1a 64 of [`Schema::encode`]: changes whenever a name, kind, offset or size
    /// changes.
    pub fn fingerprint(&self) -> u64 {
        fnv1a64(&self.encode())
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
