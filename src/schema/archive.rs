//! The one home of rkyv's archived-string layout (rkyv 0.8, default features), shared by
//! the decoder ([`super::decode`]), the encoder ([`super::encode`]) and the query
//! engine's zero-copy field reader.
//!
//! An `ArchivedString` is 8 bytes:
//!
//! | form        | bytes 0..4                                              | bytes 4..8                     |
//! |-------------|---------------------------------------------------------|--------------------------------|
//! | inline      | up to 8 UTF-8 bytes in bytes 0..8, padded with `0xff`   | (continued)                    |
//! | out of line | length: bits 7..6 of byte 0 are `10`, bits 5..0 and 31..8 hold the length | `i32` offset from the string value to its bytes |
//!
//! An inline string's first byte is never `10xxxxxx` (a UTF-8 continuation byte cannot
//! start a string), which is how the two forms are told apart. rkyv writes strings of
//! more than [`STRING_INLINE_CAPACITY`] bytes out of line, and only those.

/// `ArchivedString` keeps strings of up to this many bytes inline.
pub(crate) const STRING_INLINE_CAPACITY: usize = 8;

/// Largest length an out-of-line `ArchivedString` can carry (30 bits).
pub(crate) const STRING_MAX_LEN: usize = (1 << 30) - 1;

/// Where an `ArchivedString`'s bytes are, from its 8-byte representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringRepr {
    /// `len` bytes at the start of the representation itself.
    Inline { len: usize },
    /// `len` bytes at `rel` bytes from the start of the representation.
    OutOfLine { len: usize, rel: i32 },
}

impl StringRepr {
    /// Reads the representation `repr`.
    #[inline]
    pub(crate) fn read(repr: [u8; 8]) -> StringRepr {
        if repr[0] & 0xc0 != 0x80 {
            let len = repr
                .iter()
                .position(|&b| b == 0xff)
                .unwrap_or(STRING_INLINE_CAPACITY);
            StringRepr::Inline { len }
        } else {
            let raw = u32::from_le_bytes([repr[0], repr[1], repr[2], repr[3]]);
            StringRepr::OutOfLine {
                len: ((raw & 0x3f) | ((raw & !0xff) >> 2)) as usize,
                rel: i32::from_le_bytes([repr[4], repr[5], repr[6], repr[7]]),
            }
        }
    }

    /// The representation of `s` if it is stored inline (`s.len() <=`
    /// [`STRING_INLINE_CAPACITY`]).
    pub(crate) fn inline(s: &[u8]) -> Option<[u8; 8]> {
        let mut repr = [0xff; 8];
        repr.get_mut(..s.len())?.copy_from_slice(s);
        Some(repr)
    }

    /// The length word (bytes 0..4) of an out-of-line string of `len` bytes
    /// (`STRING_INLINE_CAPACITY < len <=` [`STRING_MAX_LEN`]); bytes 4..8 hold the
    /// relative offset to its bytes.
    pub(crate) fn out_of_line_len(len: u32) -> [u8; 4] {
        ((len & 0x3f) | 0x80 | ((len & !0x3f) << 2)).to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_back_as_rkyv_writes_them() {
        for s in ["", "a", "12345678", "123456789", &"x".repeat(1000)] {
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&s.to_string()).unwrap();
            // The root value is the last 8 bytes; out-of-line bytes come before it.
            let at = bytes.len() - 8;
            let repr: [u8; 8] = bytes[at..].try_into().unwrap();
            let got = match StringRepr::read(repr) {
                StringRepr::Inline { len } => {
                    assert_eq!(Some(repr), StringRepr::inline(s.as_bytes()));
                    &bytes[at..at + len]
                }
                StringRepr::OutOfLine { len, rel } => {
                    assert!(len > STRING_INLINE_CAPACITY);
                    assert_eq!(repr[..4], StringRepr::out_of_line_len(len as u32));
                    let start = (at as i64 + i64::from(rel)) as usize;
                    &bytes[start..start + len]
                }
            };
            assert_eq!(got, s.as_bytes());
        }
    }
}
