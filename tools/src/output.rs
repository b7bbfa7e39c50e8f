//! Printing: JSON lines of derived `Serialize` rows for scripts, `comfy-table` tables
//! for people, notes on stderr; all of it makes room for a progress bar first.

use std::io::{IsTerminal, Write as _};

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

/// How a command prints data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// A table when stdout is a terminal, JSON lines otherwise.
    pub fn default_for_stdout() -> Format {
        if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        }
    }
}

/// What `--format` accepts: `table` and `json` (alias `jsonl`) everywhere, `csv` where a
/// command offers it (`export`, `query`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line.
    #[value(alias = "jsonl")]
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// The global `--format`: table or json (csv is an option of the commands that write it).
pub fn global_format() -> impl clap::builder::TypedValueParser<Value = FormatArg> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new([
        PossibleValue::new("table").help("Aligned columns for people"),
        PossibleValue::new("json")
            .alias("jsonl")
            .help("One JSON object per line"),
    ])
    .map(|s| {
        if s == "table" {
            FormatArg::Table
        } else {
            FormatArg::Json
        }
    })
}

/// `export --format`: jsonl (alias json) or csv.
pub fn export_format() -> impl clap::builder::TypedValueParser<Value = FormatArg> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new([
        PossibleValue::new("jsonl")
            .alias("json")
            .help("One JSON object per line"),
        PossibleValue::new("csv").help("Comma-separated values with a header line"),
    ])
    .map(|s| {
        if s == "csv" {
            FormatArg::Csv
        } else {
            FormatArg::Json
        }
    })
}

/// Writes one line to stdout. When stdout is closed (`shmbus tail -f | head`) further
/// lines are dropped and the stop flag is raised, so long-running commands end
/// normally (detaching their subscribers) instead of dying on the write.
pub fn out_line(line: &str) {
    if crate::target::stdout_closed() {
        return;
    }
    crate::progress::suspend(|| {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            crate::target::close_stdout();
        }
    });
}

/// Prints `row` as one JSON line.
pub fn json_line<T: Serialize>(row: &T) {
    match serde_json::to_string(row) {
        Ok(s) => out_line(&s),
        Err(e) => note(&format!("cannot print a row as JSON: {e}")),
    }
}

/// Writes `shmbus: <message>` to stderr: a warning or a note that does not end the
/// command (above a progress bar, if one is drawn).
pub fn note(message: &str) {
    crate::progress::suspend(|| eprintln!("shmbus: {message}"));
}

/// A table without borders: columns two spaces apart, as `ls`-style tools print.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(Cell::new));
    t
}

/// A cell aligned to the right (numbers).
pub fn right(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

/// Prints a table (each line without trailing blanks).
pub fn print_table(t: &mut Table) {
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    let text = t.trim_fmt();
    out_line(text.trim_end_matches('\n'));
}

/// `1.5 KiB`-style byte counts for tables.
pub fn human_bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
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
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            s.push(if i <= chunk.len() {
                A[(n >> shift) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = table(&["a", "bbb"]);
        t.add_row(vec!["xxxx", "y"]);
        for c in t.column_iter_mut() {
            c.set_padding((0, 2));
        }
        assert_eq!(t.trim_fmt(), "a     bbb\nxxxx  y");
    }
}
