//! Encoding JSON into event payloads with a [`Schema`] alone: the inverse of
//! [`crate::schema::decode::render_json`], for tools and C programs that publish typed events
//! without the producer's Rust types (`shmbus publish`, `shmbus_event_from_json`).
//!
//! [`from_json`] parses one JSON value (its own small parser, RFC 8259, no serde) and
//! writes the rkyv 0.8 archive that `rkyv::to_bytes` would write for the same value
//! (default features: little-endian, aligned, 32-bit relative pointers), so subscribers
//! validate and read it like any other event. The layout follows rkyv's serializer:
//!
//! - out-of-line data (string bytes longer than 8, vector elements) is written before
//!   the value that points to it, depth first, fields in declaration order, so every
//!   relative pointer points backwards into a range that rkyv's validator accepts;
//! - vector elements are aligned to their kind, the root to its alignment, at the end;
//! - inline values are zero-filled before they are written (padding is 0), strings of
//!   up to 8 bytes are inline and padded with `0xff`, longer ones carry their length
//!   with the top bits `10` and a signed offset from the string value to its bytes;
//! - `Option<T>` is a tag byte (0 or 1) with `T` at `T`'s alignment.
//!
//! # JSON accepted (what `render_json` writes)
//!
//! | kind | JSON |
//! |---|---|
//! | struct | an object with exactly the struct's fields, in any order |
//! | `bool` | `true` / `false` |
//! | integers | an integer literal in the kind's range (no fraction or exponent) |
//! | `f32`, `f64` | a number, finite in the kind (NaN and infinities are not accepted) |
//! | `char` | a string of one character |
//! | `String` | a string |
//! | `Vec<u8>`, `[T; N]`, `Vec<T>` | an array (of N elements for `[T; N]`; bytes 0..=255) |
//! | `Option<T>` | `null` or a `T` (so `Some(None)` of a nested option cannot be written) |
//! | unit-only enum | the variant's name as a string |
//!
//! Errors are typed ([`FromJsonError`]) and say where: `missing field "price" at
//! column 1`, `expected a number for "qty" at column 9`, `unknown field "prise"`,
//! `300 is out of range for u8 field "qty"`. Nothing panics on any input; nesting is
//! limited to [`MAX_NESTING`] levels and the output to [`MAX_OUTPUT`] bytes.

use std::fmt;

use rkyv::util::AlignedVec;

use crate::schema::archive::{StringRepr, STRING_MAX_LEN};
use crate::schema::{Kind, Schema};

/// Deepest nesting of JSON arrays and objects accepted.
pub const MAX_NESTING: usize = 128;

/// Largest payload [`from_json`] writes (1 GiB).
pub const MAX_OUTPUT: usize = 1 << 30;

/// What is wrong with a JSON text for a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FromJsonErrorKind {
    /// The text is not JSON; says what was expected.
    Syntax(&'static str),
    /// Arrays and objects nest deeper than [`MAX_NESTING`].
    TooDeep,
    /// The object lacks a field of the struct (the path of the field).
    MissingField(String),
    /// The object has a field the struct does not (the path of the field).
    UnknownField(String),
    /// The object names a field twice.
    DuplicateField(String),
    /// A value of the wrong JSON type.
    Expected {
        /// What was expected, e.g. "a number".
        what: &'static str,
        /// The field's path (`qty`, `order.side`, `legs[2]`), empty for the root.
        path: String,
    },
    /// A number outside the field's kind, or not an integer for an integer kind.
    OutOfRange {
        /// The number as written.
        value: String,
        /// The field's kind, e.g. `u8`.
        kind: String,
        /// The field's path.
        path: String,
    },
    /// An array with the wrong number of elements for `[T; N]`.
    WrongLength {
        /// N.
        expected: u32,
        /// Elements given.
        found: usize,
        /// The field's path.
        path: String,
    },
    /// A string that names no variant of the enum.
    UnknownVariant {
        /// The string given.
        name: String,
        /// The enum's name.
        enum_name: String,
        /// The field's path.
        path: String,
    },
    /// The event would be larger than [`MAX_OUTPUT`], or a relative pointer would not
    /// fit its 32 bits.
    TooLarge,
}

/// A JSON text that does not encode with a schema: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromJsonError {
    kind: FromJsonErrorKind,
    offset: usize,
    line: usize,
    column: usize,
}

impl FromJsonError {
    /// What is wrong.
    pub fn kind(&self) -> &FromJsonErrorKind {
        &self.kind
    }

    /// Byte offset in the JSON text where the offending value (or token) starts.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// 1-based line of [`FromJsonError::offset`].
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column (in characters) of [`FromJsonError::offset`].
    pub fn column(&self) -> usize {
        self.column
    }
}

fn field_name(path: &str) -> String {
    if path.is_empty() {
        "the event".to_owned()
    } else {
        format!("{path:?}")
    }
}

impl fmt::Display for FromJsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FromJsonErrorKind as K;
        match self {
            K::Syntax(what) => write!(f, "invalid JSON: {what}"),
            K::TooDeep => write!(f, "JSON nests deeper than {MAX_NESTING} levels"),
            K::MissingField(p) => write!(f, "missing field {p:?}"),
            K::UnknownField(p) => write!(f, "unknown field {p:?}"),
            K::DuplicateField(p) => write!(f, "duplicate field {p:?}"),
            K::Expected { what, path } => write!(f, "expected {what} for {}", field_name(path)),
            K::OutOfRange { value, kind, path } => write!(
                f,
                "{value} is out of range for {kind} field {}",
                field_name(path)
            ),
            K::WrongLength {
                expected,
                found,
                path,
            } => write!(
                f,
                "expected an array of {expected} elements for {}, found {found}",
                field_name(path)
            ),
            K::UnknownVariant {
                name,
                enum_name,
                path,
            } => write!(
                f,
                "{name:?} is not a variant of {enum_name} (field {})",
                field_name(path)
            ),
            K::TooLarge => write!(f, "the event is too large to encode"),
        }
    }
}

impl fmt::Display for FromJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 1 {
            write!(
                f,
                "{} at line {}, column {}",
                self.kind, self.line, self.column
            )
        } else {
            write!(f, "{} at column {}", self.kind, self.column)
        }
    }
}

impl std::error::Error for FromJsonError {}

/// Encodes the JSON text `json` as the rkyv archive of an event described by `schema`
/// (the bytes a typed publisher of that event type would publish).
///
/// # Errors
///
/// A [`FromJsonError`] for text that is not JSON, or JSON that does not fit the schema
/// (missing, unknown or duplicate fields, wrong types, numbers out of range, wrong
/// array lengths, unknown enum variants), with its position in the text.
///
/// # Examples
///
/// ```
/// #[shmbus::event]
/// #[derive(Debug, PartialEq)]
/// struct Tick {
///     price: f64,
///     venue: String,
/// }
///
/// use shmbus::Event as _;
/// let bytes = shmbus::schema::encode::from_json(Tick::schema(), r#"{"venue":"XNAS","price":1.5}"#)?;
/// let tick = shmbus::rkyv::from_bytes::<Tick, shmbus::rkyv::rancor::Error>(&bytes)?;
/// assert_eq!(tick, Tick { price: 1.5, venue: "XNAS".into() });
///
/// let err = shmbus::schema::encode::from_json(Tick::schema(), r#"{"price":"1.5"}"#).unwrap_err();
/// assert_eq!(err.to_string(), r#"expected a number for "price" at column 10"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn from_json(schema: &Schema, json: &str) -> Result<AlignedVec, FromJsonError> {
    let fail = |offset: usize, kind: FromJsonErrorKind| {
        let before = &json[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        FromJsonError {
            kind,
            offset,
            line,
            column: json[line_start..offset].chars().count() + 1,
        }
    };
    let mut parser = Parser {
        s: json.as_bytes(),
        text: json,
        pos: 0,
    };
    let value = parser.document().map_err(|(at, k)| fail(at, k))?;
    let mut enc = Encoder {
        out: AlignedVec::new(),
        scratch: 0,
    };
    enc.root(schema, &value).map_err(|(at, k)| fail(at, k))
}

// ------------------------------------------------------------------ parser

/// A parsed JSON value and the byte offset where it starts.
#[derive(Debug)]
struct Node<'a> {
    at: usize,
    v: Json<'a>,
}

#[derive(Debug)]
enum Json<'a> {
    Null,
    Bool(bool),
    /// The number's text, checked against the JSON grammar.
    Num(&'a str),
    Str(String),
    Arr(Vec<Node<'a>>),
    /// Members in text order: (key, offset of the key, value).
    Obj(Vec<(String, usize, Node<'a>)>),
}

type Fail = (usize, FromJsonErrorKind);

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

fn syntax(at: usize, what: &'static str) -> Fail {
    (at, FromJsonErrorKind::Syntax(what))
}

impl<'a> Parser<'a> {
    fn document(&mut self) -> Result<Node<'a>, Fail> {
        let v = self.value(0)?;
        self.ws();
        if self.pos != self.s.len() {
            return Err(syntax(self.pos, "unexpected text after the value"));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn literal(&mut self, word: &'static str, v: Json<'a>) -> Result<Json<'a>, Fail> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(syntax(self.pos, "expected a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, Fail> {
        self.ws();
        let at = self.pos;
        let v = match self.peek() {
            None => return Err(syntax(at, "unexpected end of input")),
            Some(b'n') => self.literal("null", Json::Null)?,
            Some(b't') => self.literal("true", Json::Bool(true))?,
            Some(b'f') => self.literal("false", Json::Bool(false))?,
            Some(b'"') => Json::Str(self.string()?),
            Some(b'-' | b'0'..=b'9') => Json::Num(self.number()?),
            Some(b'[') => {
                if depth >= MAX_NESTING {
                    return Err((at, FromJsonErrorKind::TooDeep));
                }
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(syntax(self.pos, "expected ',' or ']'")),
                        }
                    }
                }
                Json::Arr(items)
            }
            Some(b'{') => {
                if depth >= MAX_NESTING {
                    return Err((at, FromJsonErrorKind::TooDeep));
                }
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        let key_at = self.pos;
                        if self.peek() != Some(b'"') {
                            return Err(syntax(key_at, "expected a string key"));
                        }
                        let key = self.string()?;
                        self.ws();
                        if self.peek() != Some(b':') {
                            return Err(syntax(self.pos, "expected ':'"));
                        }
                        self.pos += 1;
                        let v = self.value(depth + 1)?;
                        members.push((key, key_at, v));
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(syntax(self.pos, "expected ',' or '}'")),
                        }
                    }
                }
                Json::Obj(members)
            }
            Some(_) => return Err(syntax(at, "expected a JSON value")),
        };
        Ok(Node { at, v })
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<&'a str, Fail> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(syntax(self.pos, "expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(syntax(self.pos, "expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(syntax(self.pos, "expected a digit in the exponent"));
            }
        }
        // ASCII only, so these are char boundaries.
        Ok(&self.text[start..self.pos])
    }

    fn hex4(&mut self) -> Result<u32, Fail> {
        let at = self.pos;
        let h = self
            .s
            .get(at..at + 4)
            .ok_or_else(|| syntax(at, "expected 4 hex digits"))?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| syntax(at, "expected 4 hex digits"))?;
            v = v * 16 + d;
        }
        self.pos += 4;
        Ok(v)
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<String, Fail> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a str and the run stops at ASCII bytes: char boundaries.
            out.push_str(&self.text[run..self.pos]);
            match self.peek() {
                None => return Err(syntax(open, "unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let esc_at = self.pos;
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{08}',
                        Some(b'f') => '\u{0c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if !self.s[self.pos..].starts_with(b"\\u") {
                                    return Err(syntax(esc_at, "unpaired surrogate"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(syntax(esc_at, "unpaired surrogate"));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code)
                                .ok_or_else(|| syntax(esc_at, "unpaired surrogate"))?;
                            out.push(c);
                            continue;
                        }
                        _ => return Err(syntax(esc_at, "invalid escape")),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => {
                    return Err(syntax(self.pos, "control character in a string"));
                }
            }
        }
    }
}

// ------------------------------------------------------------------ encoder

/// A relative pointer to fill in once the value holding it has its final position:
/// the `i32` at `ptr` (offset in the value) is `target - (position of base)`.
#[derive(Debug, Clone, Copy)]
struct Fixup {
    ptr: usize,
    base: usize,
    target: usize,
}

/// An inline value not yet placed: its bytes and its pointers.
#[derive(Debug, Default)]
struct Inline {
    bytes: Vec<u8>,
    fixups: Vec<Fixup>,
}

impl Inline {
    fn of(bytes: &[u8]) -> Inline {
        Inline {
            bytes: bytes.to_vec(),
            fixups: Vec::new(),
        }
    }

    /// Copies `inner` into this value at `at`.
    fn embed(&mut self, at: usize, inner: Inline) {
        self.bytes[at..at + inner.bytes.len()].copy_from_slice(&inner.bytes);
        self.fixups.extend(inner.fixups.into_iter().map(|f| Fixup {
            ptr: f.ptr + at,
            base: f.base + at,
            target: f.target,
        }));
    }
}

struct Encoder {
    out: AlignedVec,
    /// Bytes of zero-filled inline images made so far: bounded by [`MAX_OUTPUT`] so
    /// that a schema with huge structs cannot make many huge allocations.
    scratch: usize,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn expected(node: &Node<'_>, what: &'static str, path: &str) -> Fail {
    (
        node.at,
        FromJsonErrorKind::Expected {
            what,
            path: path.to_owned(),
        },
    )
}

impl Encoder {
    /// A zero-filled inline value of `size` bytes.
    fn zeroed(&mut self, size: u32, at: usize) -> Result<Inline, Fail> {
        self.scratch = self.scratch.saturating_add(size as usize);
        if self.scratch > MAX_OUTPUT {
            // Checked before allocating.
            return Err((at, FromJsonErrorKind::TooLarge));
        }
        Ok(Inline {
            bytes: vec![0; size as usize],
            fixups: Vec::new(),
        })
    }

    fn root(&mut self, schema: &Schema, node: &Node<'_>) -> Result<AlignedVec, Fail> {
        let img = self.value(schema.root(), node, "")?;
        self.align(schema.root_align() as usize, node.at)?;
        self.place(img, node.at)?;
        Ok(std::mem::take(&mut self.out))
    }

    fn align(&mut self, align: usize, at: usize) -> Result<(), Fail> {
        let len = self.out.len();
        let padded = len.next_multiple_of(align.max(1));
        self.write_zeros(padded - len, at)
    }

    fn check_room(&self, more: usize, at: usize) -> Result<(), Fail> {
        if self.out.len().saturating_add(more) > MAX_OUTPUT {
            return Err((at, FromJsonErrorKind::TooLarge));
        }
        Ok(())
    }

    fn write_zeros(&mut self, n: usize, at: usize) -> Result<(), Fail> {
        self.check_room(n, at)?;
        self.out.resize(self.out.len() + n, 0);
        Ok(())
    }

    fn write(&mut self, bytes: &[u8], at: usize) -> Result<(), Fail> {
        self.check_room(bytes.len(), at)?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes `img` at the current end of the output and resolves its pointers.
    fn place(&mut self, img: Inline, at: usize) -> Result<usize, Fail> {
        let pos = self.out.len();
        self.write(&img.bytes, at)?;
        for f in img.fixups {
            let base = (pos + f.base) as i64;
            let rel = i32::try_from(f.target as i64 - base)
                .map_err(|_| (at, FromJsonErrorKind::TooLarge))?;
            let p = pos + f.ptr;
            self.out.as_mut_slice()[p..p + 4].copy_from_slice(&rel.to_le_bytes());
        }
        Ok(pos)
    }

    /// Writes the out-of-line parts of `node` (of kind `kind`) and returns its inline
    /// part.
    fn value(&mut self, kind: &Kind, node: &Node<'_>, path: &str) -> Result<Inline, Fail> {
        Ok(match kind {
            Kind::Bool => match node.v {
                Json::Bool(b) => Inline::of(&[u8::from(b)]),
                _ => return Err(expected(node, "true or false", path)),
            },
            Kind::U8 => Inline::of(&(self.uint(node, path, kind, 8)? as u8).to_le_bytes()),
            Kind::U16 => Inline::of(&(self.uint(node, path, kind, 16)? as u16).to_le_bytes()),
            Kind::U32 => Inline::of(&(self.uint(node, path, kind, 32)? as u32).to_le_bytes()),
            Kind::U64 => Inline::of(&self.uint(node, path, kind, 64)?.to_le_bytes()),
            Kind::I8 => Inline::of(&(self.int(node, path, kind, 8)? as i8).to_le_bytes()),
            Kind::I16 => Inline::of(&(self.int(node, path, kind, 16)? as i16).to_le_bytes()),
            Kind::I32 => Inline::of(&(self.int(node, path, kind, 32)? as i32).to_le_bytes()),
            Kind::I64 => Inline::of(&self.int(node, path, kind, 64)?.to_le_bytes()),
            Kind::F32 => {
                let text = number(node, path)?;
                let v: f32 = text
                    .parse()
                    .map_err(|_| out_of_range(node, text, kind, path))?;
                if !v.is_finite() {
                    return Err(out_of_range(node, text, kind, path));
                }
                Inline::of(&v.to_le_bytes())
            }
            Kind::F64 => {
                let text = number(node, path)?;
                let v: f64 = text
                    .parse()
                    .map_err(|_| out_of_range(node, text, kind, path))?;
                if !v.is_finite() {
                    return Err(out_of_range(node, text, kind, path));
                }
                Inline::of(&v.to_le_bytes())
            }
            Kind::Char => {
                let Json::Str(s) = &node.v else {
                    return Err(expected(node, "a string of one character", path));
                };
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Inline::of(&u32::from(c).to_le_bytes()),
                    _ => return Err(expected(node, "a string of one character", path)),
                }
            }
            Kind::String => {
                let Json::Str(s) = &node.v else {
                    return Err(expected(node, "a string", path));
                };
                self.string(s, node.at)?
            }
            Kind::Bytes => {
                let Json::Arr(items) = &node.v else {
                    return Err(expected(node, "an array of bytes", path));
                };
                let mut bytes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    bytes.push(self.uint(item, &p, &Kind::U8, 8)? as u8);
                }
                let pos = self.out.len();
                self.write(&bytes, node.at)?;
                vec_inline(pos, bytes.len(), node.at)?
            }
            Kind::Array { elem, len } => {
                let Json::Arr(items) = &node.v else {
                    return Err(expected(node, "an array", path));
                };
                if items.len() != *len as usize {
                    return Err((
                        node.at,
                        FromJsonErrorKind::WrongLength {
                            expected: *len,
                            found: items.len(),
                            path: path.to_owned(),
                        },
                    ));
                }
                let stride = elem.size() as usize;
                let mut img = self.zeroed(kind.size(), node.at)?;
                for (i, item) in items.iter().enumerate() {
                    let e = self.value(elem, item, &format!("{path}[{i}]"))?;
                    img.embed(i * stride, e);
                }
                img
            }
            Kind::Vec(elem) => {
                let Json::Arr(items) = &node.v else {
                    return Err(expected(node, "an array", path));
                };
                let mut elems = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    elems.push(self.value(elem, item, &format!("{path}[{i}]"))?);
                }
                self.align(elem.align() as usize, node.at)?;
                let pos = self.out.len();
                for e in elems {
                    self.place(e, node.at)?;
                }
                vec_inline(pos, items.len(), node.at)?
            }
            Kind::Option(inner) => {
                let mut img = self.zeroed(kind.size(), node.at)?;
                if !matches!(node.v, Json::Null) {
                    let v = self.value(inner, node, path)?;
                    img.bytes[0] = 1;
                    img.embed(inner.align() as usize, v);
                }
                img
            }
            Kind::Struct(s) => {
                let Json::Obj(members) = &node.v else {
                    return Err(expected(node, "an object", path));
                };
                // Every member names a field, once.
                for (i, (key, key_at, _)) in members.iter().enumerate() {
                    if !s.fields.iter().any(|f| f.name == *key) {
                        return Err((*key_at, FromJsonErrorKind::UnknownField(join(path, key))));
                    }
                    if members[..i].iter().any(|(k, _, _)| k == key) {
                        return Err((*key_at, FromJsonErrorKind::DuplicateField(join(path, key))));
                    }
                }
                let mut img = self.zeroed(s.size, node.at)?;
                // Declaration order, as rkyv serialises: out-of-line data follows it.
                for f in &s.fields {
                    let fpath = join(path, &f.name);
                    let Some((_, _, v)) = members.iter().find(|(k, _, _)| *k == f.name) else {
                        return Err((node.at, FromJsonErrorKind::MissingField(fpath)));
                    };
                    let fv = self.value(&f.kind, v, &fpath)?;
                    img.embed(f.offset as usize, fv);
                }
                img
            }
            Kind::Enum(e) => {
                let Json::Str(name) = &node.v else {
                    return Err(expected(node, "a variant name (a string)", path));
                };
                let Some(v) = e.variants.iter().find(|v| v.name == *name) else {
                    return Err((
                        node.at,
                        FromJsonErrorKind::UnknownVariant {
                            name: name.clone(),
                            enum_name: e.name.clone(),
                            path: path.to_owned(),
                        },
                    ));
                };
                Inline::of(&[v.tag])
            }
        })
    }

    /// An `ArchivedString`: inline up to 8 bytes, else the bytes go out of line now.
    fn string(&mut self, s: &str, at: usize) -> Result<Inline, Fail> {
        if let Some(repr) = StringRepr::inline(s.as_bytes()) {
            return Ok(Inline::of(&repr));
        }
        let len = u32::try_from(s.len())
            .ok()
            .filter(|&l| l as usize <= STRING_MAX_LEN)
            .ok_or((at, FromJsonErrorKind::TooLarge))?;
        let pos = self.out.len();
        self.write(s.as_bytes(), at)?;
        let mut img = Inline::of(&[0; 8]);
        img.bytes[..4].copy_from_slice(&StringRepr::out_of_line_len(len));
        img.fixups.push(Fixup {
            ptr: 4,
            base: 0,
            target: pos,
        });
        Ok(img)
    }

    fn uint(&self, node: &Node<'_>, path: &str, kind: &Kind, bits: u32) -> Result<u64, Fail> {
        let text = integer(node, path, kind)?;
        text.parse::<u64>()
            .ok()
            .filter(|&v| bits == 64 || v < 1 << bits)
            .ok_or_else(|| out_of_range(node, text, kind, path))
    }

    fn int(&self, node: &Node<'_>, path: &str, kind: &Kind, bits: u32) -> Result<i64, Fail> {
        let text = integer(node, path, kind)?;
        let (min, max) = if bits == 64 {
            (i64::MIN, i64::MAX)
        } else {
            (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
        };
        text.parse::<i64>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| out_of_range(node, text, kind, path))
    }
}

/// An `ArchivedVec` of `len` elements at `pos`.
fn vec_inline(pos: usize, len: usize, at: usize) -> Result<Inline, Fail> {
    let len = u32::try_from(len).map_err(|_| (at, FromJsonErrorKind::TooLarge))?;
    let mut img = Inline::of(&[0; 8]);
    img.bytes[4..].copy_from_slice(&len.to_le_bytes());
    img.fixups.push(Fixup {
        ptr: 0,
        base: 0,
        target: pos,
    });
    Ok(img)
}

fn number<'a>(node: &Node<'a>, path: &str) -> Result<&'a str, Fail> {
    match node.v {
        Json::Num(text) => Ok(text),
        _ => Err(expected(node, "a number", path)),
    }
}

fn integer<'a>(node: &Node<'a>, path: &str, kind: &Kind) -> Result<&'a str, Fail> {
    let text = number(node, path)?;
    if text.contains(['.', 'e', 'E']) {
        return Err(out_of_range(node, text, kind, path));
    }
    Ok(text)
}

fn out_of_range(node: &Node<'_>, text: &str, kind: &Kind, path: &str) -> Fail {
    (
        node.at,
        FromJsonErrorKind::OutOfRange {
            value: text.to_owned(),
            kind: kind.to_string(),
            path: path.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, StructDef};

    fn schema(fields: Vec<(&str, u32, Kind)>, size: u32, align: u32) -> Schema {
        Schema::new(
            "T",
            Kind::Struct(StructDef {
                name: "T".into(),
                size,
                align,
                fields: fields
                    .into_iter()
                    .map(|(name, offset, kind)| Field {
                        name: name.into(),
                        offset,
                        kind,
                    })
                    .collect(),
            }),
        )
        .unwrap()
    }

    fn msg(s: &Schema, json: &str) -> String {
        from_json(s, json).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field_and_column() {
        let s = schema(vec![("price", 0, Kind::F64), ("qty", 8, Kind::U8)], 16, 8);
        assert_eq!(
            msg(&s, r#"{"qty":1}"#),
            r#"missing field "price" at column 1"#
        );
        assert_eq!(
            msg(&s, r#"{"price":1, "qty":"x"}"#),
            r#"expected a number for "qty" at column 19"#
        );
        assert_eq!(
            msg(&s, r#"{"price":1,"qty":300}"#),
            r#"300 is out of range for u8 field "qty" at column 18"#
        );
        assert_eq!(
            msg(&s, r#"{"price":1,"qty":1.5}"#),
            r#"1.5 is out of range for u8 field "qty" at column 18"#
        );
        assert_eq!(
            msg(&s, "{\"price\":1,\n \"qty\":1,\"x\":2}"),
            r#"unknown field "x" at line 2, column 10"#
        );
        assert_eq!(
            msg(&s, r#"{"price":1,"price":2,"qty":1}"#),
            r#"duplicate field "price" at column 12"#
        );
        assert_eq!(
            msg(&s, r#"{"price":1e999,"qty":1}"#),
            r#"1e999 is out of range for f64 field "price" at column 10"#
        );
        assert_eq!(
            msg(&s, r#"{"price":1,"qty":1"#),
            "invalid JSON: expected ',' or '}' at column 19"
        );
        assert_eq!(
            msg(&s, "[1] x"),
            "invalid JSON: unexpected text after the value at column 5"
        );
        assert_eq!(
            msg(&s, "[1]"),
            "expected an object for the event at column 1"
        );
        let deep = "[".repeat(MAX_NESTING + 1);
        assert_eq!(
            msg(&s, &deep),
            format!(
                "JSON nests deeper than {MAX_NESTING} levels at column {}",
                MAX_NESTING + 1
            )
        );
    }

    #[test]
    fn huge_structs_are_too_large_not_allocated_without_bound() {
        let huge = Kind::Struct(StructDef {
            name: "Huge".into(),
            size: 1 << 30,
            align: 1,
            fields: vec![],
        });
        let s = schema(vec![("v", 0, Kind::Vec(Box::new(huge)))], 8, 4);
        // The root's 8 bytes and the first element's 1 GiB exceed the budget: refused
        // before the element's image is made.
        let e = from_json(&s, r#"{"v":[{},{}]}"#).unwrap_err();
        assert_eq!(e.kind(), &FromJsonErrorKind::TooLarge);
        assert_eq!(e.column(), 7);
    }

    #[test]
    fn strings_unescape_and_reject_bad_escapes() {
        let s = schema(vec![("s", 0, Kind::String)], 8, 4);
        let bytes = from_json(&s, r#"{"s":"a\u00e9\ud83d\ude00\n\"\\\/"}"#).unwrap();
        let mut out = String::new();
        crate::schema::decode::render_json(&s, &bytes, &mut out).unwrap();
        assert_eq!(out, r#"{"s":"aé😀\n\"\\/"}"#);
        assert!(msg(&s, r#"{"s":"\ud83d"}"#).contains("unpaired surrogate"));
        assert!(msg(&s, r#"{"s":"\x"}"#).contains("invalid escape"));
        assert!(msg(&s, "{\"s\":\"a\u{1}\"}").contains("control character"));
        assert!(msg(&s, r#"{"s":"abc"#).contains("unterminated string"));
    }
}
