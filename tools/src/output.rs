//! Output formats: a human table on a terminal, JSON lines for scripts.

use std::io::IsTerminal;

/// How a command prints data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

/// What `--format` accepts: the output formats above, plus `csv` (and `jsonl`, the same
/// as `json`) for `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line.
    #[value(alias = "jsonl")]
    Json,
    /// Comma-separated values (`export` only).
    Csv,
}
