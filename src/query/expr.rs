//! The expression language: lexer, parser and printer.
//!
//! ```text
//! expr     := and ( ("or" | "||") and )*
//! and      := unary ( ("and" | "&&") unary )*
//! unary    := ("not" | "!") unary | primary
//! primary  := "(" expr ")" | operand [ cmp operand ]
//! operand  := ["-"] number | string | "true" | "false" | "null" | path
//!           | "starts_with" "(" operand "," operand ")"      (same as a ^= b)
//! cmp      := "==" | "!=" | "<" | "<=" | ">" | ">=" | "^="   ("^=" is "starts with")
//! path     := ["@"] name ("." name)*      name := [A-Za-z_][A-Za-z0-9_]*
//! string   := "..." or '...' with \" \' \\ \n \r \t \u{hex} escapes
//! ```
//!
//! Keywords are case-insensitive. `@name` always means a header field (`@time`), a bare
//! name means the schema field if there is one, else the header field. Columns in
//! errors count characters from 1.

use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `^=`: the left string starts with the right one.
    Prefix,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Prefix => "^=",
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`); `None` for `^=`.
    pub fn flipped(self) -> Option<CmpOp> {
        Some(match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            CmpOp::Prefix => return None,
        })
    }
}

/// A number literal: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer (no `.` or exponent).
    Int(i128),
    /// Anything else.
    Float(f64),
}

/// An operand with the column where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    /// What it is.
    pub kind: OperandKind,
    /// 1-based column in the source (0 for built trees).
    pub column: usize,
}

/// The operand kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum OperandKind {
    /// A field path (or an enum variant name, resolved against the other side).
    Path(String),
    /// A number.
    Number(Number),
    /// A string.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `lhs op rhs`
    Cmp {
        /// Left side.
        lhs: Operand,
        /// Operator.
        op: CmpOp,
        /// Right side.
        rhs: Operand,
    },
    /// A lone operand: a boolean field (or literal).
    Truth(Operand),
}

impl Expr {
    /// The same tree with every column set to 0 (to compare trees from different
    /// sources).
    pub fn without_columns(&self) -> Expr {
        let op = |o: &Operand| Operand {
            kind: o.kind.clone(),
            column: 0,
        };
        match self {
            Expr::Or(a, b) => {
                Expr::Or(Box::new(a.without_columns()), Box::new(b.without_columns()))
            }
            Expr::And(a, b) => {
                Expr::And(Box::new(a.without_columns()), Box::new(b.without_columns()))
            }
            Expr::Not(a) => Expr::Not(Box::new(a.without_columns())),
            Expr::Cmp { lhs, op: o, rhs } => Expr::Cmp {
                lhs: op(lhs),
                op: *o,
                rhs: op(rhs),
            },
            Expr::Truth(a) => Expr::Truth(op(a)),
        }
    }
}

/// A malformed expression: what was expected and the 1-based column where it went wrong
/// (one past the end when the input ended too early).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad expression at column {}: {}",
            self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Deepest nesting of parentheses and `not` the parser accepts.
pub const MAX_NESTING: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(Number),
    Str(String),
    LParen,
    RParen,
    Comma,
    Minus,
    Op(CmpOp),
    And,
    Or,
    Not,
    True,
    False,
    Null,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Num(_) => "a number".into(),
            Tok::Str(_) => "a string".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Minus => "'-'".into(),
            Tok::Op(o) => format!("'{}'", o.as_str()),
            Tok::And => "'and'".into(),
            Tok::Or => "'or'".into(),
            Tok::Not => "'not'".into(),
            Tok::True => "'true'".into(),
            Tok::False => "'false'".into(),
            Tok::Null => "'null'".into(),
            Tok::End => "the end".into(),
        }
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |col: usize, m: String| ParseError {
        column: col,
        message: m,
    };
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = match two.as_str() {
            "==" => Some(Tok::Op(CmpOp::Eq)),
            "!=" => Some(Tok::Op(CmpOp::Ne)),
            "<=" => Some(Tok::Op(CmpOp::Le)),
            ">=" => Some(Tok::Op(CmpOp::Ge)),
            "^=" => Some(Tok::Op(CmpOp::Prefix)),
            "&&" => Some(Tok::And),
            "||" => Some(Tok::Or),
            _ => None,
        };
        if let Some(t) = op2 {
            out.push((t, col));
            i += 2;
            continue;
        }
        let one = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '-' => Some(Tok::Minus),
            '<' => Some(Tok::Op(CmpOp::Lt)),
            '>' => Some(Tok::Op(CmpOp::Gt)),
            '!' => Some(Tok::Not),
            _ => None,
        };
        if let Some(t) = one {
            out.push((t, col));
            i += 1;
            continue;
        }
        if c == '=' {
            return Err(err(
                col,
                "'=' is not an operator; use '==' to compare".into(),
            ));
        }
        if c == '"' || c == '\'' {
            let quote = c;
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(err(col, "unterminated string".into()));
                };
                i += 1;
                if c == quote {
                    break;
                }
                if c != '\\' {
                    s.push(c);
                    continue;
                }
                let Some(&e) = chars.get(i) else {
                    return Err(err(col, "unterminated string".into()));
                };
                i += 1;
                match e {
                    '"' | '\'' | '\\' => s.push(e),
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'u' => {
                        let esc_col = i;
                        if chars.get(i) != Some(&'{') {
                            return Err(err(esc_col, "expected '{' after \\u".into()));
                        }
                        let start = i + 1;
                        let Some(len) = chars[start..].iter().position(|&c| c == '}') else {
                            return Err(err(esc_col, "unterminated \\u{...} escape".into()));
                        };
                        let hex: String = chars[start..start + len].iter().collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| (1..=6).contains(&hex.len()))
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                err(
                                    esc_col,
                                    format!("\\u{{{hex}}} is not a Unicode scalar value"),
                                )
                            })?;
                        s.push(ch);
                        i = start + len + 1;
                    }
                    other => {
                        return Err(err(i, format!("unknown escape '\\{other}' in string")));
                    }
                }
            }
            out.push((Tok::Str(s), col));
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            let mut float = false;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if chars.get(i) == Some(&'.') {
                float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if matches!(chars.get(i), Some('e' | 'E')) {
                let mut j = i + 1;
                if matches!(chars.get(j), Some('+' | '-')) {
                    j += 1;
                }
                if chars.get(j).is_some_and(|d| d.is_ascii_digit()) {
                    float = true;
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            if chars
                .get(i)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            {
                return Err(err(i + 1, "unexpected character after a number".into()));
            }
            let text: String = chars[start..i].iter().collect();
            let n = if float {
                let v: f64 = text
                    .parse()
                    .map_err(|_| err(col, format!("bad number {text}")))?;
                if !v.is_finite() {
                    return Err(err(col, format!("number {text} is out of range")));
                }
                Number::Float(v)
            } else {
                Number::Int(
                    text.parse::<u64>()
                        .map(i128::from)
                        .map_err(|_| err(col, format!("number {text} is out of range")))?,
                )
            };
            out.push((Tok::Num(n), col));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == '@' {
            let start = i;
            i += 1;
            if c == '@'
                && !chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
            {
                return Err(err(col, "expected a header field name after '@'".into()));
            }
            loop {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                // A '.' continues the path only if a name follows.
                if chars.get(i) == Some(&'.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
                {
                    i += 1;
                    continue;
                }
                break;
            }
            let word: String = chars[start..i].iter().collect();
            let tok = match word.to_ascii_lowercase().as_str() {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                "true" => Tok::True,
                "false" => Tok::False,
                "null" => Tok::Null,
                _ => Tok::Ident(word),
            };
            out.push((tok, col));
            continue;
        }
        return Err(err(col, format!("unexpected character {c:?}")));
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }
    fn col(&self) -> usize {
        self.toks[self.i].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn err<T>(&self, message: String) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.col(),
            message,
        })
    }
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.err(format!("expression nests deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while *self.peek() == Tok::Or {
            self.bump();
            if *self.peek() == Tok::End {
                return self.err("expected an expression after 'or'".into());
            }
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while *self.peek() == Tok::And {
            self.bump();
            if *self.peek() == Tok::End {
                return self.err("expected an expression after 'and'".into());
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::Not {
            self.enter()?;
            self.bump();
            if *self.peek() == Tok::End {
                return self.err("expected an expression after 'not'".into());
            }
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::LParen {
            self.enter()?;
            let (_, open) = self.bump();
            if *self.peek() == Tok::RParen {
                return self.err("expected an expression inside '()'".into());
            }
            let e = self.or()?;
            if *self.peek() != Tok::RParen {
                return self.err(format!(
                    "expected ')' to close the '(' at column {open}, found {}",
                    self.peek().describe()
                ));
            }
            self.bump();
            self.depth -= 1;
            return Ok(e);
        }
        let lhs = self.operand("expected a field, a value or '('")?;
        if let Some(e) = self.call(&lhs)? {
            return Ok(e);
        }
        if let Tok::Op(op) = *self.peek() {
            self.bump();
            let rhs = self.operand(&format!("expected a value after '{}'", op.as_str()))?;
            return Ok(Expr::Cmp { lhs, op, rhs });
        }
        Ok(Expr::Truth(lhs))
    }

    /// `starts_with(a, b)`, if `name` is followed by '('.
    fn call(&mut self, name: &Operand) -> Result<Option<Expr>, ParseError> {
        let OperandKind::Path(f) = &name.kind else {
            return Ok(None);
        };
        if *self.peek() != Tok::LParen {
            return Ok(None);
        }
        if f != "starts_with" {
            return Err(ParseError {
                column: name.column,
                message: format!("unknown function '{f}' (known: starts_with)"),
            });
        }
        self.bump();
        let a = self.operand("expected a field as the first argument of starts_with")?;
        if *self.peek() != Tok::Comma {
            return self.err(format!(
                "expected ',' between the arguments of starts_with, found {}",
                self.peek().describe()
            ));
        }
        self.bump();
        let b = self.operand("expected a string as the second argument of starts_with")?;
        if *self.peek() != Tok::RParen {
            return self.err(format!(
                "expected ')' after the arguments of starts_with, found {}",
                self.peek().describe()
            ));
        }
        self.bump();
        Ok(Some(Expr::Cmp {
            lhs: a,
            op: CmpOp::Prefix,
            rhs: b,
        }))
    }

    fn operand(&mut self, expected: &str) -> Result<Operand, ParseError> {
        let column = self.col();
        let kind = match self.peek().clone() {
            Tok::Ident(s) => OperandKind::Path(s),
            Tok::Num(n) => OperandKind::Number(n),
            Tok::Str(s) => OperandKind::Str(s),
            Tok::True => OperandKind::Bool(true),
            Tok::False => OperandKind::Bool(false),
            Tok::Null => OperandKind::Null,
            Tok::Minus => {
                self.bump();
                let n = match self.peek() {
                    Tok::Num(Number::Int(i)) => Number::Int(-i),
                    Tok::Num(Number::Float(f)) => Number::Float(-f),
                    _ => return self.err("expected a number after '-'".into()),
                };
                OperandKind::Number(n)
            }
            Tok::End => return self.err(expected.to_string()),
            other => return self.err(format!("{expected}, found {}", other.describe())),
        };
        self.bump();
        Ok(Operand { kind, column })
    }
}

/// Parses an expression.
///
/// # Errors
///
/// A [`ParseError`] with the column of the first problem.
///
/// # Examples
///
/// ```
/// use shmbus::query::parse_expr;
/// let e = parse_expr("price > 100 and side == \"Buy\"").unwrap();
/// assert_eq!(e.to_string(), "price > 100 and side == \"Buy\"");
/// let err = parse_expr("price > ").unwrap_err();
/// assert_eq!(err.to_string(), "bad expression at column 9: expected a value after '>'");
/// ```
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    if *p.peek() == Tok::End {
        return p.err("empty expression".into());
    }
    let e = p.or()?;
    if *p.peek() != Tok::End {
        let what = p.peek().describe();
        let hint = match p.peek() {
            Tok::RParen => " (no '(' to close)",
            Tok::Ident(_) | Tok::Num(_) | Tok::Str(_) => " (missing 'and'/'or' or an operator?)",
            _ => "",
        };
        return p.err(format!("unexpected {what}{hint}"));
    }
    Ok(e)
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(_) => 3,
        Expr::Cmp { .. } | Expr::Truth(_) => 4,
    }
}

fn write_sub(f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if prec(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

/// Writes `s` as a double-quoted string literal the lexer reads back.
pub(crate) fn write_str_lit(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            // `{:?}` is the shortest form that reads back, always with '.' or 'e'.
            Number::Float(v) => write!(f, "{v:?}"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            OperandKind::Path(p) => f.write_str(p),
            OperandKind::Number(n) => write!(f, "{n}"),
            OperandKind::Str(s) => write_str_lit(f, s),
            OperandKind::Bool(b) => write!(f, "{b}"),
            OperandKind::Null => f.write_str("null"),
        }
    }
}

/// The canonical form: minimal parentheses, `and`/`or`/`not`, double-quoted strings.
/// Parsing the printed form gives back the same tree (columns aside).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(a, b) => {
                write_sub(f, a, 1)?;
                f.write_str(" or ")?;
                write_sub(f, b, 2)
            }
            Expr::And(a, b) => {
                write_sub(f, a, 2)?;
                f.write_str(" and ")?;
                write_sub(f, b, 3)
            }
            Expr::Not(a) => {
                f.write_str("not ")?;
                write_sub(f, a, 3)
            }
            Expr::Cmp { lhs, op, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str()),
            Expr::Truth(o) => write!(f, "{o}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn col(src: &str) -> usize {
        parse_expr(src).unwrap_err().column
    }

    #[test]
    fn precedence_and_forms() {
        let e = parse_expr("a or b and not c").unwrap();
        assert_eq!(e.to_string(), "a or b and not c");
        assert!(matches!(e, Expr::Or(..)));
        let e = parse_expr("(a or b) and c").unwrap();
        assert_eq!(e.to_string(), "(a or b) and c");
        let e = parse_expr("starts_with(symbol, 'AB') && !(x<=-1.5e3) || y").unwrap();
        assert_eq!(e.to_string(), "symbol ^= \"AB\" and not x <= -1500.0 or y");
        let e = parse_expr("@time >= 5 AND side == Buy").unwrap();
        assert_eq!(e.to_string(), "@time >= 5 and side == Buy");
        assert_eq!(
            parse_expr("a == \"q\\\"\\u{e9}\"").unwrap().to_string(),
            "a == \"q\\\"é\""
        );
    }

    #[test]
    fn error_columns() {
        assert_eq!(col("price > "), 9);
        assert_eq!(col("price >"), 8);
        assert_eq!(col("(a == 1"), 8);
        assert_eq!(col("a == 1)"), 7);
        assert_eq!(col("a = 1"), 3);
        assert_eq!(col("a == 'x"), 6);
        assert_eq!(col("a == 1 b"), 8);
        assert_eq!(col("foo(a)"), 1);
        assert_eq!(col(""), 1);
        assert_eq!(col("a and"), 6);
        assert_eq!(col("a == 99999999999999999999999"), 6);
        assert_eq!(col("s == 'é' and #"), 14);
        let deep = "(".repeat(10_000);
        assert!(parse_expr(&deep).is_err());
        let nots = "not ".repeat(10_000) + "a";
        assert!(parse_expr(&nots).is_err());
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("price".to_string()),
            Just("side".to_string()),
            Just("order.qty".to_string()),
            Just("@time".to_string()),
            "[a-z_][a-z0-9_]{0,6}".prop_filter("keyword", |s| {
                !matches!(
                    s.as_str(),
                    "and" | "or" | "not" | "true" | "false" | "null" | "starts_with"
                )
            }),
        ]
    }

    fn operand() -> impl Strategy<Value = Operand> {
        let kind = prop_oneof![
            name().prop_map(OperandKind::Path),
            any::<i64>().prop_map(|i| OperandKind::Number(Number::Int(i128::from(i)))),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| OperandKind::Number(Number::Float(v))),
            any::<String>().prop_map(OperandKind::Str),
            any::<bool>().prop_map(OperandKind::Bool),
            Just(OperandKind::Null),
        ];
        kind.prop_map(|kind| Operand { kind, column: 0 })
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Lt),
            Just(CmpOp::Le),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge),
            Just(CmpOp::Prefix),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            (operand(), op(), operand()).prop_map(|(lhs, op, rhs)| Expr::Cmp { lhs, op, rhs }),
            operand().prop_map(Expr::Truth),
        ];
        leaf.prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Expr::Not(Box::new(a))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printed_trees_parse_back(e in expr()) {
            let printed = e.to_string();
            let back = parse_expr(&printed);
            prop_assert!(back.is_ok(), "{printed}: {:?}", back);
            let back = back.unwrap();
            prop_assert_eq!(back.without_columns(), e, "{}", printed);
            prop_assert_eq!(back.to_string(), printed);
        }

        #[test]
        fn garbage_never_panics(s in "\\PC{0,40}") {
            if let Err(e) = parse_expr(&s) {
                prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1,
                    "column {} outside {:?}", e.column, s);
            }
        }

        #[test]
        fn near_misses_never_panic(s in "[a-z_@. ()!=<>^&|,'\"0-9eE+-]{0,40}") {
            if let Err(e) = parse_expr(&s) {
                prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1,
                    "column {} outside {:?}", e.column, s);
            }
        }
    }
}
