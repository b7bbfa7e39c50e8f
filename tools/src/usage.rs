//! Usage errors as one line: a clap [`ErrorFormatter`] that builds the message from the
//! error's kind and context (no re-parsing of rendered text), and the subcommand a
//! command line named (from clap's own partial parse), for `see shmbus <cmd> --help`.

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorFormatter, ErrorKind};
use clap::{ArgMatches, Command};

/// Formats a clap error as one line: what is wrong, clap's suggestion if it has one,
/// and the usage it shows.
pub struct OneLine;

fn text(v: Option<&ContextValue>) -> Option<String> {
    match v? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(s) => Some(s.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::StyledStrs(s) => Some(
            s.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ContextValue::Number(n) => Some(n.to_string()),
        ContextValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl ErrorFormatter for OneLine {
    fn format_error(e: &clap::error::Error<Self>) -> StyledStr {
        let get = |k| text(e.get(k));
        let arg = get(ContextKind::InvalidArg).unwrap_or_default();
        let value = get(ContextKind::InvalidValue).unwrap_or_default();
        let mut m = match e.kind() {
            ErrorKind::InvalidValue if value.is_empty() => {
                format!("a value is required for '{arg}' but none was supplied")
            }
            ErrorKind::InvalidValue => format!("invalid value '{value}' for '{arg}'"),
            ErrorKind::ValueValidation => {
                let why = std::error::Error::source(e).map(|s| format!(": {s}"));
                format!(
                    "invalid value '{value}' for '{arg}'{}",
                    why.unwrap_or_default()
                )
            }
            ErrorKind::UnknownArgument => format!("unexpected argument '{arg}' found"),
            ErrorKind::InvalidSubcommand => format!(
                "unrecognized subcommand '{}'",
                get(ContextKind::InvalidSubcommand).unwrap_or_default()
            ),
            ErrorKind::MissingRequiredArgument => {
                format!("the following required arguments were not provided: {arg}")
            }
            ErrorKind::ArgumentConflict => match get(ContextKind::PriorArg) {
                Some(p) if p == arg => {
                    format!("the argument '{arg}' cannot be used multiple times")
                }
                Some(p) => format!("the argument '{arg}' cannot be used with '{p}'"),
                None => format!("the argument '{arg}' cannot be used with the other arguments"),
            },
            ErrorKind::TooManyValues => {
                format!("unexpected value '{value}' for '{arg}' found; no more were expected")
            }
            k => k.as_str().unwrap_or("bad command line").to_string(),
        };
        if let Some(v) = get(ContextKind::ValidValue) {
            m.push_str(&format!(" [possible values: {v}]"));
        }
        for k in [ContextKind::SuggestedSubcommand, ContextKind::SuggestedArg] {
            if let Some(s) = get(k) {
                m.push_str(&format!("; tip: a similar one exists: '{s}'"));
            }
        }
        if let Some(ContextValue::StyledStr(u)) = e.get(ContextKind::Usage) {
            let u = u.to_string();
            let u = u.trim().trim_start_matches("Usage:").trim();
            m.push_str(&format!(" (usage: {u})"));
        }
        StyledStr::from(m)
    }
}

/// The subcommand `args` (with the program name) names, as far as clap can tell even
/// when the line has errors.
pub fn subcommand_named(cmd: Command, args: &[std::ffi::OsString]) -> Option<String> {
    let m: ArgMatches = cmd.ignore_errors(true).try_get_matches_from(args).ok()?;
    m.subcommand_name().map(str::to_string)
}

/// Where to find help: `see shmbus <cmd> --help`.
pub fn see_help(subcommand: Option<&str>) -> String {
    match subcommand {
        Some(c) => format!("see shmbus {c} --help"),
        None => "see shmbus --help".into(),
    }
}
