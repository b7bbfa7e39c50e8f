//! Building blocks for printing data: a small JSON object writer (one object per line
//! in JSON mode) and an aligned text table (on a terminal).

use std::fmt::Write as _;
use std::io::Write as _;

pub use shmbus::schema::decode::push_json_str as json_str;

/// A JSON object under construction; keys are written in call order.
#[derive(Debug, Default, Clone)]
pub struct Obj {
    buf: String,
}

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj {
            buf: String::from("{"),
        }
    }

    fn key(&mut self, k: &str) {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        json_str(&mut self.buf, k);
        self.buf.push(':');
    }

    /// A string field.
    pub fn str(mut self, k: &str, v: &str) -> Obj {
        self.key(k);
        json_str(&mut self.buf, v);
        self
    }

    /// A string field, or null.
    pub fn opt_str(self, k: &str, v: Option<&str>) -> Obj {
        match v {
            Some(v) => self.str(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// An unsigned integer field.
    pub fn u64(mut self, k: &str, v: u64) -> Obj {
        self.key(k);
        let _ = write!(self.buf, "{v}");
        self
    }

    /// An unsigned integer field, or null.
    pub fn opt_u64(self, k: &str, v: Option<u64>) -> Obj {
        match v {
            Some(v) => self.u64(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// A floating-point field (non-finite values become null).
    pub fn f64(mut self, k: &str, v: f64) -> Obj {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.buf, "{v}");
        } else {
            self.buf.push_str("null");
        }
        self
    }

    /// A boolean field.
    pub fn bool(mut self, k: &str, v: bool) -> Obj {
        self.key(k);
        self.buf.push_str(if v { "true" } else { "false" });
        self
    }

    /// A field whose value is already JSON.
    pub fn raw(mut self, k: &str, json: &str) -> Obj {
        self.key(k);
        self.buf.push_str(json);
        self
    }

    /// An array of objects.
    pub fn arr(self, k: &str, items: impl IntoIterator<Item = Obj>) -> Obj {
        let mut a = String::from("[");
        for (i, it) in items.into_iter().enumerate() {
            if i > 0 {
                a.push(',');
            }
            a.push_str(&it.finish());
        }
        a.push(']');
        self.raw(k, &a)
    }

    /// The finished object text.
    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

/// Writes one line to stdout. When stdout is closed (`shmbus tail -f | head`) further
/// lines are dropped and the stop flag is raised, so long-running commands end
/// normally (detaching their subscribers) instead of dying on the write.
pub fn out_line(line: &str) {
    if crate::target::stdout_closed() {
        return;
    }
    crate::progress::before_stdout();
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        crate::target::close_stdout();
    }
}

/// Writes `shmbus: <message>` to stderr: a warning or a note that does not end the
/// command (erasing a progress line first).
pub fn note(message: &str) {
    crate::progress::clear_line();
    eprintln!("shmbus: {message}");
}

/// Text columns aligned to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether only the header row is present.
    pub fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    /// The table as text, one line per row, columns separated by two spaces.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut width = vec![0; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    let _ = write!(line, "{c:<w$}  ", w = width[i]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table to stdout.
    pub fn print(&self) {
        let text = self.render();
        out_line(text.trim_end_matches('\n'));
    }
}

/// `1.5 KiB`-style byte counts for tables.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        s.push(A[(n >> 18) as usize & 63] as char);
        s.push(A[(n >> 12) as usize & 63] as char);
        s.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects() {
        let o = Obj::new()
            .str("a", "q\"\n\u{1}")
            .u64("n", 5)
            .bool("b", false)
            .opt_u64("x", None)
            .arr("l", [Obj::new().u64("i", 1)])
            .finish();
        assert_eq!(
            o,
            r#"{"a":"q\"\n\u0001","n":5,"b":false,"x":null,"l":[{"i":1}]}"#
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn table_alignment() {
        let mut t = Table::new(&["a", "bbb"]);
        t.row(vec!["xxxx".into(), "y".into()]);
        assert_eq!(t.render(), "a     bbb\nxxxx  y\n");
    }
}
