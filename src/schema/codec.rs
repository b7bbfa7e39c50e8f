//! The stored form of a [`Schema`]: the bytes written into a ring file's schema table
//! and into every segment.
//!
//! # Layout
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

use super::{
    check_name, EnumDef, Field, Kind, Schema, SchemaError, SchemaErrorKind, StructDef, Variant,
    MAX_DEPTH,
};

/// Magic bytes at the start of an encoded schema.
pub const MAGIC: [u8; 4] = *b"SHSC";

/// Version of the stored schema format written by [`Schema::encode`].
pub const FORMAT_VERSION: u16 = 1;

impl Kind {
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

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Validated: 1..=u16::MAX bytes.
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Schema {
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
