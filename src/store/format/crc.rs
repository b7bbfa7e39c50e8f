//! crc32c arithmetic the format needs beyond `crc32c` itself: combining the checksums
//! of consecutive runs into the checksum of a segment's data without reading it again.

const CRC32C_POLY: u32 = 0x82f6_3b78;

/// `a * b` modulo the CRC-32C polynomial (reflected bit order: bit 31 is `x^0`).
fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                return p;
            }
        }
        m >>= 1;
        if m == 0 {
            return p;
        }
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC32C_POLY
        } else {
            b >> 1
        };
    }
}

/// `x^(8 * len)` modulo the polynomial: the operator that shifts a CRC past `len`
/// bytes.
fn shift_op(len: u64) -> u32 {
    // x^(2^k) for k = 3 (one byte) upwards, by repeated squaring.
    let mut sq = 1u32 << 30; // x^1
    for _ in 0..3 {
        sq = multmodp(sq, sq);
    }
    let mut p = 1u32 << 31; // x^0
    let mut n = len;
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(sq, p);
        }
        sq = multmodp(sq, sq);
        n >>= 1;
    }
    p
}

/// The crc32c of `A ++ B` from `crc32c(A)`, `crc32c(B)` and `B`'s length, as zlib's
/// `crc32_combine` does it. The shift operators of the run lengths the recorder
/// writes (multiples of 64 up to 64 KiB) are cached, so combining costs one
/// multiplication (`crc32c::crc32c_combine` recomputes them, which costs more than
/// checksumming the run again).
pub(crate) fn crc_combine(crc1: u32, crc2: u32, len2: u64) -> u32 {
    const CACHED: usize = 1024;
    static OPS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    let op = if len2 % 64 == 0 && ((len2 / 64) as usize) < CACHED {
        OPS.get_or_init(|| (0..CACHED as u64).map(|i| shift_op(i * 64)).collect())
            [(len2 / 64) as usize]
    } else {
        shift_op(len2)
    };
    multmodp(op, crc1) ^ crc2
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_combine_matches_a_single_pass() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for split in [0, 1, 63, 64, 1000, 4096, 4999, 5000] {
            let (a, b) = data.split_at(split);
            let c = super::crc_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len() as u64);
            assert_eq!(c, crc32c::crc32c(&data), "split at {split}");
        }
    }
}
