//! Decoding event payloads with a [`Schema`] alone: [`read_field`] for the query engine,
//! [`render_json`] for tools.
//!
//! The payload is an rkyv 0.8 archive (default features: little-endian, aligned, 32-bit
//! relative pointers) whose root value sits at its end, at
//! `payload.len() - schema.root_size()`. Nothing here trusts the payload: every read is
//! a bounds-checked slice of it (no `unsafe`), every relative pointer is checked to land
//! inside it, booleans, chars, UTF-8, option tags and enum tags are validated, and a
//! byte budget stops pointers that make the decoder visit the same bytes over and over:
//! the out-of-line bytes followed while rendering one payload may not add up to more
//! than the payload holds outside its root (true of every archive rkyv writes, where
//! each string or vector body is written once). Alignment of the payload is not
//! required, since values are read with `from_le_bytes`.
//!
//! # JSON
//!
//! [`render_json`] writes compact JSON: structs as objects (fields in declaration
//! order), enums as their variant name, `None` as `null`, strings and chars as escaped
//! strings, bytes and arrays as arrays of numbers (as `serde_json` writes `Vec<u8>`),
//! floats in shortest round-trip form, and NaN and infinities as `null`.

use std::fmt::{self, Write as _};

use crate::schema::archive::{StringRepr, STRING_INLINE_CAPACITY};
use crate::schema::{FieldRef, Kind, Schema};

/// A value read from a payload by [`read_field`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// `None`.
    Null,
    /// A `bool`.
    Bool(bool),
    /// Any signed integer.
    I64(i64),
    /// Any unsigned integer.
    U64(u64),
    /// An `f32` or `f64`.
    F64(f64),
    /// A `char`.
    Char(char),
    /// A `String`, borrowed from the payload.
    Str(&'a str),
    /// A `Vec<u8>`, borrowed from the payload.
    Bytes(&'a [u8]),
    /// An enum, as its variant name.
    Enum(&'a str),
    /// A nested struct, array or vector.
    Composite(Composite<'a>),
}

/// A struct, array or non-byte vector inside a payload, as returned by [`read_field`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Composite<'a> {
    kind: &'a Kind,
    payload: &'a [u8],
    offset: usize,
}

impl<'a> Composite<'a> {
    /// The composite's kind.
    pub fn kind(&self) -> &'a Kind {
        self.kind
    }

    /// Appends the value as compact JSON to `out`.
    ///
    /// # Errors
    ///
    /// As [`render_json`]; `out` is left as it was.
    pub fn render_json(&self, out: &mut String) -> Result<(), DecodeError> {
        let start = out.len();
        let mut r = Reader::new(self.payload, self.payload.len());
        r.render(self.kind, self.offset, out).inspect_err(|_| {
            out.truncate(start);
        })
    }
}

/// A payload that does not decode with its schema.
///
/// Offsets are byte offsets from the start of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload is shorter than the archived root value.
    TooShort {
        /// The payload's length.
        len: usize,
        /// The root value's size.
        root_size: u32,
    },
    /// A read or a relative pointer's target falls outside the payload.
    OutOfBounds {
        /// Where the read starts (may be negative for pointers).
        offset: i64,
        /// How many bytes it needs.
        len: u64,
        /// The payload's length.
        payload_len: usize,
    },
    /// A `bool` byte that is neither 0 nor 1.
    InvalidBool {
        /// Where.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A `char` that is not a Unicode scalar value.
    InvalidChar {
        /// Where.
        offset: usize,
        /// The value.
        value: u32,
    },
    /// String bytes that are not UTF-8.
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// An out-of-line string representation with a length that fits inline.
    InvalidString {
        /// Where the string value is.
        offset: usize,
    },
    /// An `Option` tag that is neither 0 nor 1.
    InvalidOptionTag {
        /// Where.
        offset: usize,
        /// The tag.
        tag: u8,
    },
    /// An enum tag that names no variant.
    InvalidEnumTag {
        /// Where.
        offset: usize,
        /// The tag.
        tag: u8,
    },
    /// Relative pointers reach more bytes than the payload holds (overlapping or
    /// repeated targets); see the module docs.
    BudgetExceeded {
        /// Where the pointer that went over the budget is.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort { len, root_size } => {
                write!(
                    f,
                    "payload of {len} bytes is shorter than its {root_size}-byte root"
                )
            }
            DecodeError::OutOfBounds {
                offset,
                len,
                payload_len,
            } => write!(
                f,
                "read of {len} bytes at {offset} is outside the {payload_len}-byte payload"
            ),
            DecodeError::InvalidBool { offset, byte } => {
                write!(f, "invalid bool {byte:#04x} at byte {offset}")
            }
            DecodeError::InvalidChar { offset, value } => {
                write!(f, "invalid char {value:#x} at byte {offset}")
            }
            DecodeError::InvalidUtf8 { offset } => {
                write!(f, "string at byte {offset} is not UTF-8")
            }
            DecodeError::InvalidString { offset } => {
                write!(f, "invalid string representation at byte {offset}")
            }
            DecodeError::InvalidOptionTag { offset, tag } => {
                write!(f, "invalid option tag {tag} at byte {offset}")
            }
            DecodeError::InvalidEnumTag { offset, tag } => {
                write!(f, "enum tag {tag} at byte {offset} names no variant")
            }
            DecodeError::BudgetExceeded { offset } => write!(
                f,
                "pointer at byte {offset} reaches more bytes than the payload holds"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Offset of the archived root value in `payload`.
fn root_offset(schema: &Schema, payload: &[u8]) -> Result<usize, DecodeError> {
    payload
        .len()
        .checked_sub(schema.root_size() as usize)
        .ok_or(DecodeError::TooShort {
            len: payload.len(),
            root_size: schema.root_size(),
        })
}

/// Appends the event in `payload` as one compact JSON value (an object for struct
/// events) to `out`, using only `schema`.
///
/// # Errors
///
/// A [`DecodeError`] if the payload does not hold a valid archive of the schema's type;
/// `out` is then left as it was.
///
/// # Examples
///
/// ```
/// #[shmbus::event]
/// struct Tick {
///     price: f64,
///     venue: String,
/// }
///
/// use shmbus::Event as _;
/// let bytes = shmbus::rkyv::to_bytes::<shmbus::rkyv::rancor::Error>(&Tick {
///     price: 1.5,
///     venue: "XNAS".into(),
/// })
/// .unwrap();
/// let mut json = String::new();
/// shmbus::schema::render_json(Tick::schema(), &bytes, &mut json).unwrap();
/// assert_eq!(json, r#"{"price":1.5,"venue":"XNAS"}"#);
/// ```
pub fn render_json(schema: &Schema, payload: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let start = out.len();
    let result = root_offset(schema, payload).and_then(|root| {
        let mut r = Reader::new(payload, root);
        r.render(schema.root(), root, out)
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Reads one field (resolved with [`Schema::field`]) of the event in `payload`.
///
/// Scalars come back as themselves (`Option` as `Null` or the inner value); nested
/// structs, arrays and non-byte vectors as [`Value::Composite`].
///
/// # Errors
///
/// A [`DecodeError`] if the field's bytes are out of bounds or invalid.
pub fn read_field<'a>(
    schema: &Schema,
    payload: &'a [u8],
    field: &'a FieldRef,
) -> Result<Value<'a>, DecodeError> {
    let root = root_offset(schema, payload)?;
    let offset = root
        .checked_add(field.offset() as usize)
        .ok_or_else(|| out_of_bounds(payload, root as i64, u64::from(field.offset())))?;
    Reader::new(payload, payload.len()).value(field.kind(), offset)
}

fn out_of_bounds(payload: &[u8], offset: i64, len: u64) -> DecodeError {
    DecodeError::OutOfBounds {
        offset,
        len,
        payload_len: payload.len(),
    }
}

/// Bounds-checked reads from one payload.
struct Reader<'a> {
    buf: &'a [u8],
    /// Out-of-line bytes that may still be followed (see the module docs).
    budget: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], budget: usize) -> Self {
        Reader { buf, budget }
    }

    fn bytes(&self, offset: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        offset
            .checked_add(len)
            .and_then(|end| self.buf.get(offset..end))
            .ok_or_else(|| out_of_bounds(self.buf, offset as i64, len as u64))
    }

    fn array<const N: usize>(&self, offset: usize) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(offset, N)?);
        Ok(a)
    }

    fn u8(&self, offset: usize) -> Result<u8, DecodeError> {
        Ok(self.bytes(offset, 1)?[0])
    }

    fn u32(&self, offset: usize) -> Result<u32, DecodeError> {
        self.array(offset).map(u32::from_le_bytes)
    }

    /// Follows the 32-bit relative pointer stored at `ptr_at`, relative to `base`, to
    /// `len` bytes: checks they are inside the payload, charges them to the budget,
    /// and returns their offset.
    fn follow(&mut self, base: usize, ptr_at: usize, len: u64) -> Result<usize, DecodeError> {
        let rel = i32::from_le_bytes(self.array(ptr_at)?);
        let target = base as i64 + i64::from(rel);
        let oob = || out_of_bounds(self.buf, target, len);
        let start = usize::try_from(target).map_err(|_| oob())?;
        let len = usize::try_from(len).map_err(|_| oob())?;
        self.bytes(start, len)?;
        self.budget = self
            .budget
            .checked_sub(len)
            .ok_or(DecodeError::BudgetExceeded { offset: base })?;
        Ok(start)
    }

    /// The bytes of the `ArchivedString` at `offset`.
    fn string(&mut self, offset: usize) -> Result<&'a str, DecodeError> {
        let (bytes, at) = match StringRepr::read(self.array(offset)?) {
            StringRepr::Inline { len } => (self.bytes(offset, len)?, offset),
            StringRepr::OutOfLine { len, .. } => {
                if len <= STRING_INLINE_CAPACITY {
                    return Err(DecodeError::InvalidString { offset });
                }
                let start = self.follow(offset, offset + 4, len as u64)?;
                (self.bytes(start, len)?, start)
            }
        };
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { offset: at })
    }

    /// The `ArchivedVec` at `offset` with `elem_size`-byte elements: (start of the
    /// elements, count).
    fn vec(&mut self, offset: usize, elem_size: u32) -> Result<(usize, usize), DecodeError> {
        let len = self.u32(offset + 4)?;
        if len == 0 {
            // rkyv writes an arbitrary offset for empty vectors; don't follow it.
            return Ok((offset, 0));
        }
        // Zero-sized elements are rejected by schema validation; `max` keeps a
        // hand-built kind from claiming billions of elements in no bytes.
        let total = u64::from(len) * u64::from(elem_size.max(1));
        let start = self.follow(offset, offset, total)?;
        Ok((start, len as usize))
    }

    fn bool(&self, offset: usize) -> Result<bool, DecodeError> {
        match self.u8(offset)? {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(DecodeError::InvalidBool { offset, byte }),
        }
    }

    fn char(&self, offset: usize) -> Result<char, DecodeError> {
        let value = self.u32(offset)?;
        char::from_u32(value).ok_or(DecodeError::InvalidChar { offset, value })
    }

    /// `Ok(Some(payload offset))` for `Some`, `Ok(None)` for `None`.
    fn option(&self, inner: &Kind, offset: usize) -> Result<Option<usize>, DecodeError> {
        match self.u8(offset)? {
            0 => Ok(None),
            1 => Ok(Some(offset + inner.align() as usize)),
            tag => Err(DecodeError::InvalidOptionTag { offset, tag }),
        }
    }

    fn variant<'k>(
        &self,
        e: &'k crate::schema::EnumDef,
        offset: usize,
    ) -> Result<&'k str, DecodeError> {
        let tag = self.u8(offset)?;
        e.variant_name(tag)
            .ok_or(DecodeError::InvalidEnumTag { offset, tag })
    }

    /// Reads the value of kind `kind` at `offset` (scalars only; composites are
    /// returned by reference).
    fn value(&mut self, kind: &'a Kind, offset: usize) -> Result<Value<'a>, DecodeError> {
        Ok(match kind {
            Kind::Bool => Value::Bool(self.bool(offset)?),
            Kind::U8 => Value::U64(u64::from(self.u8(offset)?)),
            Kind::U16 => Value::U64(u64::from(u16::from_le_bytes(self.array(offset)?))),
            Kind::U32 => Value::U64(u64::from(self.u32(offset)?)),
            Kind::U64 => Value::U64(u64::from_le_bytes(self.array(offset)?)),
            Kind::I8 => Value::I64(i64::from(i8::from_le_bytes(self.array(offset)?))),
            Kind::I16 => Value::I64(i64::from(i16::from_le_bytes(self.array(offset)?))),
            Kind::I32 => Value::I64(i64::from(i32::from_le_bytes(self.array(offset)?))),
            Kind::I64 => Value::I64(i64::from_le_bytes(self.array(offset)?)),
            Kind::F32 => Value::F64(f64::from(f32::from_le_bytes(self.array(offset)?))),
            Kind::F64 => Value::F64(f64::from_le_bytes(self.array(offset)?)),
            Kind::Char => Value::Char(self.char(offset)?),
            Kind::String => Value::Str(self.string(offset)?),
            Kind::Bytes => {
                let (start, len) = self.vec(offset, 1)?;
                Value::Bytes(self.bytes(start, len)?)
            }
            Kind::Option(inner) => match self.option(inner, offset)? {
                None => Value::Null,
                Some(at) => self.value(inner, at)?,
            },
            Kind::Enum(e) => {
                let tag = self.u8(offset)?;
                let name = e
                    .variant_name(tag)
                    .ok_or(DecodeError::InvalidEnumTag { offset, tag })?;
                Value::Enum(name)
            }
            Kind::Struct(_) | Kind::Array { .. } | Kind::Vec(_) => {
                // Check the inline part is in bounds now, so a Composite is only
                // handed out for bytes that exist.
                self.bytes(offset, kind.size() as usize)?;
                Value::Composite(Composite {
                    kind,
                    payload: self.buf,
                    offset,
                })
            }
        })
    }

    /// Appends the value of kind `kind` at `offset` as JSON.
    fn render(&mut self, kind: &Kind, offset: usize, out: &mut String) -> Result<(), DecodeError> {
        match kind {
            Kind::Bool => out.push_str(if self.bool(offset)? { "true" } else { "false" }),
            Kind::U8 => push_display(out, self.u8(offset)?),
            Kind::U16 => push_display(out, u16::from_le_bytes(self.array(offset)?)),
            Kind::U32 => push_display(out, self.u32(offset)?),
            Kind::U64 => push_display(out, u64::from_le_bytes(self.array(offset)?)),
            Kind::I8 => push_display(out, i8::from_le_bytes(self.array(offset)?)),
            Kind::I16 => push_display(out, i16::from_le_bytes(self.array(offset)?)),
            Kind::I32 => push_display(out, i32::from_le_bytes(self.array(offset)?)),
            Kind::I64 => push_display(out, i64::from_le_bytes(self.array(offset)?)),
            Kind::F32 => push_f32(out, f32::from_le_bytes(self.array(offset)?)),
            Kind::F64 => push_f64(out, f64::from_le_bytes(self.array(offset)?)),
            Kind::Char => {
                let c = self.char(offset)?;
                push_json_str(out, c.encode_utf8(&mut [0; 4]));
            }
            Kind::String => {
                let s = self.string(offset)?;
                push_json_str(out, s);
            }
            Kind::Bytes => {
                let (start, len) = self.vec(offset, 1)?;
                push_bytes(out, self.bytes(start, len)?);
            }
            Kind::Array { elem, len } => {
                self.render_seq(elem, offset, *len as usize, out)?;
            }
            Kind::Vec(elem) => {
                let (start, len) = self.vec(offset, elem.size())?;
                self.render_seq(elem, start, len, out)?;
            }
            Kind::Option(inner) => match self.option(inner, offset)? {
                None => out.push_str("null"),
                Some(at) => self.render(inner, at, out)?,
            },
            Kind::Struct(s) => {
                // Check the whole struct first so a truncated payload fails early.
                self.bytes(offset, s.size as usize)?;
                out.push('{');
                for (i, f) in s.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_str(out, &f.name);
                    out.push(':');
                    self.render(&f.kind, offset + f.offset as usize, out)?;
                }
                out.push('}');
            }
            Kind::Enum(e) => {
                let name = self.variant(e, offset)?;
                push_json_str(out, name);
            }
        }
        Ok(())
    }

    fn render_seq(
        &mut self,
        elem: &Kind,
        start: usize,
        len: usize,
        out: &mut String,
    ) -> Result<(), DecodeError> {
        let stride = elem.size() as usize;
        if let Kind::U8 = elem {
            // Common case: [u8; N] / Vec<u8>-like.
            push_bytes(out, self.bytes(start, len)?);
            return Ok(());
        }
        // Bounds-check the whole run before rendering any of it; validated schemas have
        // no zero-sized elements, so `len` is bounded by the payload length.
        let total = stride
            .checked_mul(len)
            .ok_or_else(|| out_of_bounds(self.buf, start as i64, u64::MAX))?;
        self.bytes(start, total)?;
        if stride == 0 && len > self.buf.len() {
            return Err(out_of_bounds(self.buf, start as i64, len as u64));
        }
        out.push('[');
        for i in 0..len {
            if i > 0 {
                out.push(',');
            }
            self.render(elem, start + i * stride, out)?;
        }
        out.push(']');
        Ok(())
    }
}

fn push_display(out: &mut String, v: impl fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{v}");
}

fn push_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        // `{:?}` is the shortest round-trip form, always valid JSON for finite values
        // (`1.0`, `1e300`, `-0.0`).
        let _ = write!(out, "{v:?}");
    } else {
        out.push_str("null");
    }
}

fn push_f32(out: &mut String, v: f32) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        out.push_str("null");
    }
}

fn push_bytes(out: &mut String, bytes: &[u8]) {
    out.push('[');
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_display(out, b);
    }
    out.push(']');
}

/// Appends `s` to `out` as a JSON string literal (quotes, backslashes and control
/// characters escaped).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{08}' => "\\b",
            '\u{0c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&s[plain..]);
    out.push('"');
}
