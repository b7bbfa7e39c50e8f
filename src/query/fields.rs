//! The fields of a record as the query engine reads them: header fields, and schema
//! fields by dotted path resolved once to a byte offset and a leaf kind, read straight
//! from archived payload bytes with bounds-checked slices (no `unsafe`, no allocation,
//! no JSON). A payload that is too short, or an invalid tag, makes the record
//! *undecodable*.

use crate::query::QueryError;
use crate::schema::archive::StringRepr;
use crate::schema::{EnumDef, Kind, Schema};

/// A record as the query engine sees it: header fields and the payload bytes.
#[derive(Debug, Clone, Copy)]
pub struct Rec<'a> {
    /// Position in the topic.
    pub position: u64,
    /// Producer timestamp, ns since the Unix epoch.
    pub timestamp: u64,
    /// Type id.
    pub type_id: u64,
    /// The payload (an rkyv archive for typed topics).
    pub payload: &'a [u8],
}

/// A record header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    /// The record's position.
    Position,
    /// The producer timestamp (ns since the Unix epoch); also `timestamp`.
    Time,
    /// The type id.
    Type,
    /// The payload length in bytes.
    Len,
}

impl HeaderField {
    /// Names accepted for header fields (with or without a leading `@`).
    pub const NAMES: [&'static str; 4] = ["position", "time", "type", "len"];

    fn from_name(name: &str) -> Option<HeaderField> {
        Some(match name {
            "position" => HeaderField::Position,
            "time" | "timestamp" => HeaderField::Time,
            "type" => HeaderField::Type,
            "len" => HeaderField::Len,
            _ => return None,
        })
    }

    /// The field's value in `r`.
    #[inline]
    pub fn get(self, r: &Rec<'_>) -> u64 {
        match self {
            HeaderField::Position => r.position,
            HeaderField::Time => r.timestamp,
            HeaderField::Type => r.type_id,
            HeaderField::Len => r.payload.len() as u64,
        }
    }
}

/// The scalar kinds a filter or aggregate reads directly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Leaf {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Bool,
    Char,
    Str,
    Enum(EnumDef),
    /// Anything else (structs, arrays, vectors, bytes, nested options): projected as
    /// JSON, never compared.
    Other(String),
}

impl Leaf {
    fn of(kind: &Kind) -> Leaf {
        match kind {
            Kind::U8 => Leaf::U8,
            Kind::U16 => Leaf::U16,
            Kind::U32 => Leaf::U32,
            Kind::U64 => Leaf::U64,
            Kind::I8 => Leaf::I8,
            Kind::I16 => Leaf::I16,
            Kind::I32 => Leaf::I32,
            Kind::I64 => Leaf::I64,
            Kind::F32 => Leaf::F32,
            Kind::F64 => Leaf::F64,
            Kind::Bool => Leaf::Bool,
            Kind::Char => Leaf::Char,
            Kind::String => Leaf::Str,
            Kind::Enum(e) => Leaf::Enum(e.clone()),
            other => Leaf::Other(other.to_string()),
        }
    }

    pub(crate) fn is_numeric(&self) -> bool {
        matches!(
            self,
            Leaf::U8
                | Leaf::U16
                | Leaf::U32
                | Leaf::U64
                | Leaf::I8
                | Leaf::I16
                | Leaf::I32
                | Leaf::I64
                | Leaf::F32
                | Leaf::F64
        )
    }

    pub(crate) fn is_float(&self) -> bool {
        matches!(self, Leaf::F32 | Leaf::F64)
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Leaf::F32 | Leaf::F64 => "a float".into(),
            l if l.is_numeric() => "an integer".into(),
            Leaf::Bool => "a bool".into(),
            Leaf::Char => "a char".into(),
            Leaf::Str => "a string".into(),
            Leaf::Enum(e) => format!("an enum ({})", e.name),
            Leaf::Other(k) => format!("a {k}"),
            _ => "a value".into(),
        }
    }
}

/// Where a schema field's value lives in a payload.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// Offset from the archived root.
    offset: usize,
    /// For `Option<T>` fields: the offset of `T` after the tag byte.
    pub(crate) opt: Option<usize>,
    pub(crate) leaf: Leaf,
}

/// Where a value was found.
pub(crate) enum Loc {
    At(usize),
    Null,
    Bad,
}

/// A number read from a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    I(i128),
    F(f64),
}

impl Num {
    #[inline]
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            // Values come from at most 64-bit integers: avoid the slow i128 conversion.
            Num::I(i) => match i64::try_from(i) {
                Ok(v) => v as f64,
                Err(_) => i as f64,
            },
            Num::F(f) => f,
        }
    }
}

#[inline]
fn arr<const N: usize>(p: &[u8], at: usize) -> Option<[u8; N]> {
    let s = p.get(at..at.checked_add(N)?)?;
    <[u8; N]>::try_from(s).ok()
}

impl Access {
    #[inline]
    pub(crate) fn locate(&self, p: &[u8], root_size: usize) -> Loc {
        let Some(root) = p.len().checked_sub(root_size) else {
            return Loc::Bad;
        };
        let at = root + self.offset;
        match self.opt {
            None => Loc::At(at),
            Some(inner) => match p.get(at) {
                Some(0) => Loc::Null,
                Some(1) => Loc::At(at + inner),
                _ => Loc::Bad,
            },
        }
    }

    /// A numeric leaf at `at`.
    #[inline]
    pub(crate) fn num_at(&self, p: &[u8], at: usize) -> Option<Num> {
        Some(match self.leaf {
            Leaf::F64 => Num::F(f64::from_le_bytes(arr(p, at)?)),
            Leaf::F32 => Num::F(f64::from(f32::from_le_bytes(arr(p, at)?))),
            Leaf::U8 => Num::I(i128::from(*p.get(at)?)),
            Leaf::U16 => Num::I(i128::from(u16::from_le_bytes(arr(p, at)?))),
            Leaf::U32 => Num::I(i128::from(u32::from_le_bytes(arr(p, at)?))),
            Leaf::U64 => Num::I(i128::from(u64::from_le_bytes(arr(p, at)?))),
            Leaf::I8 => Num::I(i128::from(*p.get(at)? as i8)),
            Leaf::I16 => Num::I(i128::from(i16::from_le_bytes(arr(p, at)?))),
            Leaf::I32 => Num::I(i128::from(i32::from_le_bytes(arr(p, at)?))),
            Leaf::I64 => Num::I(i128::from(i64::from_le_bytes(arr(p, at)?))),
            _ => return None,
        })
    }

    /// The bytes of a string leaf (rkyv `ArchivedString`) at `at`, or a char's UTF-8
    /// in `buf`. Not checked for UTF-8: comparisons are on bytes.
    #[inline]
    pub(crate) fn str_at<'p>(
        &self,
        p: &'p [u8],
        at: usize,
        buf: &'p mut [u8; 4],
    ) -> Option<&'p [u8]> {
        if let Leaf::Char = self.leaf {
            let c = char::from_u32(u32::from_le_bytes(arr(p, at)?))?;
            let n = c.encode_utf8(buf).len();
            return Some(&buf[..n]);
        }
        match StringRepr::read(arr(p, at)?) {
            StringRepr::Inline { len } => p.get(at..at + len),
            StringRepr::OutOfLine { len, rel } => {
                let start = usize::try_from(at as i64 + i64::from(rel)).ok()?;
                p.get(start..start.checked_add(len)?)
            }
        }
    }
}

/// What a name in a query refers to.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Header(HeaderField),
    Field { path: String, acc: Access },
}

impl Target {
    pub(crate) fn name(&self) -> String {
        match self {
            Target::Header(h) => match h {
                HeaderField::Position => "position".into(),
                HeaderField::Time => "time".into(),
                HeaderField::Type => "type".into(),
                HeaderField::Len => "len".into(),
            },
            Target::Field { path, .. } => path.clone(),
        }
    }

    /// Numeric value; `Ok(None)` for a null option; `Err(())` if undecodable.
    #[inline]
    pub(crate) fn num(&self, r: &Rec<'_>, root_size: usize) -> Result<Option<Num>, ()> {
        match self {
            Target::Header(h) => Ok(Some(Num::I(i128::from(h.get(r))))),
            Target::Field { acc, .. } => match acc.locate(r.payload, root_size) {
                Loc::At(at) => acc.num_at(r.payload, at).map(Some).ok_or(()),
                Loc::Null => Ok(None),
                Loc::Bad => Err(()),
            },
        }
    }

    pub(crate) fn is_numeric(&self) -> bool {
        match self {
            Target::Header(_) => true,
            Target::Field { acc, .. } => acc.leaf.is_numeric(),
        }
    }

    pub(crate) fn is_float(&self) -> bool {
        matches!(self, Target::Field { acc, .. } if acc.leaf.is_float())
    }
}

/// Resolves names against a schema (or header fields only, for raw topics).
pub(crate) struct Resolver<'s> {
    pub(crate) schema: Option<&'s Schema>,
}

/// Every leaf path of a kind's struct fields, dotted.
pub(crate) fn leaf_paths(kind: &Kind, prefix: &str, out: &mut Vec<String>) {
    if let Kind::Struct(s) = kind {
        for f in &s.fields {
            let p = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}.{}", f.name)
            };
            if let Kind::Struct(_) = f.kind {
                leaf_paths(&f.kind, &p, out);
            } else {
                out.push(p);
            }
        }
    }
}

impl Resolver<'_> {
    /// Known names: schema leaf paths, then the header fields.
    pub(crate) fn known(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = self.schema {
            leaf_paths(s.root(), "", &mut out);
        }
        out.extend(HeaderField::NAMES.iter().map(|s| s.to_string()));
        out
    }

    pub(crate) fn resolve(&self, name: &str, column: Option<usize>) -> Result<Target, QueryError> {
        let unknown = || QueryError::UnknownField {
            name: name.to_string(),
            column,
            known: self.known(),
        };
        if let Some(h) = name.strip_prefix('@') {
            return HeaderField::from_name(h)
                .map(Target::Header)
                .ok_or_else(unknown);
        }
        if let Some(f) = self.schema.and_then(|s| s.field(name)) {
            let (opt, leaf) = match f.kind() {
                Kind::Option(inner) => match **inner {
                    Kind::Option(_) => (None, Leaf::Other(f.kind().to_string())),
                    ref k => (Some(inner.align() as usize), Leaf::of(k)),
                },
                k => (None, Leaf::of(k)),
            };
            return Ok(Target::Field {
                path: name.to_string(),
                acc: Access {
                    offset: f.offset() as usize,
                    opt,
                    leaf,
                },
            });
        }
        HeaderField::from_name(name)
            .map(Target::Header)
            .ok_or_else(unknown)
    }
}
