//! Compiling an [`Expr`] against a schema into a [`Filter`] and evaluating it on
//! archived payload bytes (see [`super::fields`] for how fields are read). A payload
//! that is too short, or an invalid tag, makes the record *undecodable*: it never
//! matches and is counted.

use crate::query::expr::{CmpOp, Expr, Number, Operand, OperandKind};
use crate::query::fields::{Access, HeaderField, Leaf, Loc, Num, Rec, Resolver, Target};
use crate::query::QueryError;
use crate::schema::Schema;

/// A compiled filter: evaluate with [`Filter::eval`].
#[derive(Debug, Clone)]
pub struct Filter {
    node: Node,
    root_size: usize,
    needs_payload: bool,
}

#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Hdr {
        f: HeaderField,
        op: CmpOp,
        v: Num,
    },
    /// A header field against an integer that fits its type (the common case).
    HdrU64 {
        f: HeaderField,
        op: CmpOp,
        v: u64,
    },
    Num {
        acc: Access,
        op: CmpOp,
        v: Num,
    },
    Str {
        acc: Access,
        op: CmpOp,
        v: Box<[u8]>,
    },
    Tag {
        acc: Access,
        eq: bool,
        tag: u8,
    },
    Bool {
        acc: Access,
        eq: bool,
        v: bool,
    },
    IsNull {
        acc: Access,
        eq: bool,
    },
}

#[inline]
fn cmp<T: PartialOrd>(a: T, op: CmpOp, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        CmpOp::Prefix => false,
    }
}

#[inline]
fn cmp_num(a: Num, op: CmpOp, b: Num) -> bool {
    match (a, b) {
        (Num::I(x), Num::I(y)) => cmp(x, op, y),
        (Num::F(x), Num::F(y)) => cmp(x, op, y),
        (x, y) => cmp(x.as_f64(), op, y.as_f64()),
    }
}

impl Node {
    fn needs_payload(&self) -> bool {
        match self {
            Node::Const(_) | Node::Hdr { .. } | Node::HdrU64 { .. } => false,
            Node::And(a, b) | Node::Or(a, b) => a.needs_payload() || b.needs_payload(),
            Node::Not(a) => a.needs_payload(),
            _ => true,
        }
    }

    /// `None`: the payload does not decode.
    #[inline]
    fn eval(&self, r: &Rec<'_>, root: usize) -> Option<bool> {
        Some(match self {
            Node::Const(b) => *b,
            Node::And(a, b) => a.eval(r, root)? && b.eval(r, root)?,
            Node::Or(a, b) => a.eval(r, root)? || b.eval(r, root)?,
            Node::Not(a) => !a.eval(r, root)?,
            Node::HdrU64 { f, op, v } => cmp(f.get(r), *op, *v),
            Node::Hdr { f, op, v } => cmp_num(Num::I(i128::from(f.get(r))), *op, *v),
            Node::Num { acc, op, v } => match acc.locate(r.payload, root) {
                Loc::At(at) => cmp_num(acc.num_at(r.payload, at)?, *op, *v),
                Loc::Null => *op == CmpOp::Ne,
                Loc::Bad => return None,
            },
            Node::Str { acc, op, v } => match acc.locate(r.payload, root) {
                Loc::At(at) => {
                    let mut buf = [0u8; 4];
                    let s = acc.str_at(r.payload, at, &mut buf)?;
                    if *op == CmpOp::Prefix {
                        s.starts_with(v)
                    } else {
                        cmp(s, *op, &v[..])
                    }
                }
                Loc::Null => *op == CmpOp::Ne,
                Loc::Bad => return None,
            },
            Node::Tag { acc, eq, tag } => match acc.locate(r.payload, root) {
                Loc::At(at) => (*r.payload.get(at)? == *tag) == *eq,
                Loc::Null => !*eq,
                Loc::Bad => return None,
            },
            Node::Bool { acc, eq, v } => match acc.locate(r.payload, root) {
                Loc::At(at) => {
                    let b = match r.payload.get(at)? {
                        0 => false,
                        1 => true,
                        _ => return None,
                    };
                    (b == *v) == *eq
                }
                Loc::Null => !*eq,
                Loc::Bad => return None,
            },
            Node::IsNull { acc, eq } => match acc.locate(r.payload, root) {
                Loc::At(_) => !*eq,
                Loc::Null => *eq,
                Loc::Bad => return None,
            },
        })
    }
}

impl Filter {
    /// Compiles `expr` against `schema` (`None`: raw topic, header fields only).
    /// `now_ns` anchors relative times compared with `time` (`time > "-5m"`).
    ///
    /// # Errors
    ///
    /// [`QueryError::UnknownField`] naming the field and the known ones,
    /// [`QueryError::Type`] for comparisons that cannot hold (a string field with a
    /// number, `<` on an enum, an unknown variant, ...), each with the column.
    pub fn compile(
        expr: &Expr,
        schema: Option<&Schema>,
        now_ns: u64,
    ) -> Result<Filter, QueryError> {
        let r = Resolver { schema };
        let node = compile(expr, &r, now_ns)?;
        Ok(Filter {
            needs_payload: node.needs_payload(),
            node,
            root_size: schema.map_or(0, |s| s.root_size() as usize),
        })
    }

    /// Whether evaluating reads the payload (false: header fields only).
    pub fn needs_payload(&self) -> bool {
        self.needs_payload
    }

    /// Evaluates the filter on a record: `Some(matches)`, or `None` if a field it
    /// reads does not decode.
    #[inline]
    pub fn eval(&self, r: &Rec<'_>) -> Option<bool> {
        self.node.eval(r, self.root_size)
    }
}

fn type_err(column: usize, message: String) -> QueryError {
    QueryError::Type {
        column: Some(column),
        message,
    }
}

fn lit_desc(o: &Operand) -> String {
    match &o.kind {
        OperandKind::Number(_) => "a number".into(),
        OperandKind::Str(_) => "a string".into(),
        OperandKind::Bool(_) => "a bool".into(),
        OperandKind::Null => "null".into(),
        OperandKind::Path(p) => format!("'{p}'"),
    }
}

fn num_of(n: Number) -> Num {
    match n {
        Number::Int(i) => Num::I(i),
        Number::Float(f) => Num::F(f),
    }
}

fn compile(e: &Expr, r: &Resolver<'_>, now: u64) -> Result<Node, QueryError> {
    Ok(match e {
        Expr::Or(a, b) => Node::Or(Box::new(compile(a, r, now)?), Box::new(compile(b, r, now)?)),
        Expr::And(a, b) => Node::And(Box::new(compile(a, r, now)?), Box::new(compile(b, r, now)?)),
        Expr::Not(a) => Node::Not(Box::new(compile(a, r, now)?)),
        Expr::Truth(o) => match &o.kind {
            OperandKind::Bool(b) => Node::Const(*b),
            OperandKind::Path(p) => match r.resolve(p, Some(o.column))? {
                Target::Field { acc, .. } if acc.leaf == Leaf::Bool => Node::Bool {
                    acc,
                    eq: true,
                    v: true,
                },
                t => {
                    return Err(type_err(
                        o.column,
                        format!(
                            "'{p}' is {}, not a bool: compare it with a value",
                            target_desc(&t)
                        ),
                    ))
                }
            },
            _ => {
                return Err(type_err(
                    o.column,
                    format!("{o} is not a condition: compare a field with it"),
                ))
            }
        },
        Expr::Cmp { lhs, op, rhs } => compile_cmp(lhs, *op, rhs, r, now)?,
    })
}

fn target_desc(t: &Target) -> String {
    match t {
        Target::Header(_) => "a header number".into(),
        Target::Field { acc, .. } => acc.leaf.describe(),
    }
}

fn is_enum(t: &Target) -> bool {
    matches!(
        t,
        Target::Field {
            acc: Access {
                leaf: Leaf::Enum(_),
                ..
            },
            ..
        }
    )
}

fn is_variant_of(t: &Target, name: &str) -> bool {
    matches!(t, Target::Field { acc: Access { leaf: Leaf::Enum(e), .. }, .. }
        if e.variants.iter().any(|v| v.name == name))
}

fn compile_cmp(
    lhs: &Operand,
    op: CmpOp,
    rhs: &Operand,
    r: &Resolver<'_>,
    now: u64,
) -> Result<Node, QueryError> {
    let (target, op, lit) = match (&lhs.kind, &rhs.kind) {
        (OperandKind::Path(a), OperandKind::Path(b)) => {
            // One side may be an enum variant name (`side == Buy`).
            let ta = r.resolve(a, Some(lhs.column));
            match ta {
                Ok(t) if is_variant_of(&t, b) || (is_enum(&t) && r.resolve(b, None).is_err()) => {
                    (t, op, rhs)
                }
                _ => {
                    let tb = r.resolve(b, Some(rhs.column));
                    match tb {
                        Ok(t) if is_variant_of(&t, a) || (is_enum(&t) && ta.is_err()) => {
                            let op = op.flipped().ok_or_else(|| {
                                type_err(lhs.column, "'^=' needs the field on its left".into())
                            })?;
                            (t, op, lhs)
                        }
                        Ok(_) => {
                            ta?;
                            return Err(type_err(
                                lhs.column,
                                format!(
                                    "'{a}' and '{b}' are both fields: compare a field with a value"
                                ),
                            ));
                        }
                        Err(e) => {
                            ta?;
                            return Err(e);
                        }
                    }
                }
            }
        }
        (OperandKind::Path(a), _) => (r.resolve(a, Some(lhs.column))?, op, rhs),
        (_, OperandKind::Path(b)) => {
            let t = r.resolve(b, Some(rhs.column))?;
            let op = op
                .flipped()
                .ok_or_else(|| type_err(lhs.column, "'^=' needs the field on its left".into()))?;
            (t, op, lhs)
        }
        _ => {
            return Err(type_err(
                lhs.column,
                format!(
                    "{lhs} {} {rhs} compares two values: compare a field with a value",
                    op.as_str()
                ),
            ))
        }
    };
    let name = target.name();
    let mismatch = || {
        type_err(
            lit.column,
            format!(
                "'{name}' is {} and cannot be compared with {}",
                target_desc(&target),
                lit_desc(lit)
            ),
        )
    };
    let acc = match &target {
        Target::Header(f) => {
            let v = match &lit.kind {
                OperandKind::Number(n) => num_of(*n),
                OperandKind::Str(s) if *f == HeaderField::Time => {
                    let t = super::time::parse_time(s, now).map_err(|m| type_err(lit.column, m))?;
                    Num::I(i128::from(t))
                }
                _ => return Err(mismatch()),
            };
            if op == CmpOp::Prefix {
                return Err(type_err(
                    lit.column,
                    format!("'^=' needs a string field, '{name}' is a number"),
                ));
            }
            if let Num::I(i) = v {
                if let Ok(v) = u64::try_from(i) {
                    return Ok(Node::HdrU64 { f: *f, op, v });
                }
            }
            return Ok(Node::Hdr { f: *f, op, v });
        }
        Target::Field { acc, .. } => acc.clone(),
    };
    if let OperandKind::Null = lit.kind {
        if acc.opt.is_none() {
            return Err(type_err(
                lit.column,
                format!("'{name}' is not an Option and is never null"),
            ));
        }
        let eq = match op {
            CmpOp::Eq => true,
            CmpOp::Ne => false,
            _ => {
                return Err(type_err(
                    lit.column,
                    "null can only be compared with == and !=".into(),
                ))
            }
        };
        return Ok(Node::IsNull { acc, eq });
    }
    if op == CmpOp::Prefix && !matches!(acc.leaf, Leaf::Str | Leaf::Char) {
        return Err(type_err(
            lit.column,
            format!(
                "'^=' needs a string field, '{name}' is {}",
                acc.leaf.describe()
            ),
        ));
    }
    let eq_only = |what: &str| -> Result<bool, QueryError> {
        match op {
            CmpOp::Eq => Ok(true),
            CmpOp::Ne => Ok(false),
            _ => Err(type_err(
                lit.column,
                format!("'{name}' is {what}: only == and != apply"),
            )),
        }
    };
    let leaf = acc.leaf.clone();
    Ok(match (&leaf, &lit.kind) {
        (l, OperandKind::Number(n)) if l.is_numeric() => {
            // Compare floats with a float, so evaluation never converts per event.
            let v = if l.is_float() {
                Num::F(num_of(*n).as_f64())
            } else {
                num_of(*n)
            };
            Node::Num { acc, op, v }
        }
        (Leaf::Str | Leaf::Char, OperandKind::Str(s)) => Node::Str {
            acc,
            op,
            v: s.as_bytes().into(),
        },
        (Leaf::Bool, OperandKind::Bool(v)) => {
            let eq = eq_only("a bool")?;
            Node::Bool { acc, eq, v: *v }
        }
        (Leaf::Enum(e), OperandKind::Str(s) | OperandKind::Path(s)) => {
            let eq = eq_only("an enum")?;
            let Some(v) = e.variants.iter().find(|v| v.name == *s) else {
                let names: Vec<&str> = e.variants.iter().map(|v| v.name.as_str()).collect();
                return Err(type_err(
                    lit.column,
                    format!(
                        "{s:?} is not a variant of {} ('{name}'); variants: {}",
                        e.name,
                        names.join(", ")
                    ),
                ));
            };
            Node::Tag {
                acc,
                eq,
                tag: v.tag,
            }
        }
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_expr;

    #[shmbus::event]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Side {
        Buy,
        Sell,
    }

    #[shmbus::event]
    #[derive(Debug, Clone)]
    struct Inner {
        venue: String,
        lots: i16,
    }

    #[shmbus::event]
    #[derive(Debug, Clone)]
    struct Trade {
        symbol: String,
        side: Side,
        price: f64,
        qty: u32,
        flag: bool,
        note: Option<String>,
        fee: Option<f32>,
        inner: Inner,
        initial: char,
    }

    fn trade(symbol: &str, side: Side, price: f64, qty: u32) -> Trade {
        Trade {
            symbol: symbol.into(),
            side,
            price,
            qty,
            flag: qty % 2 == 0,
            note: (qty > 10).then(|| "a long note, stored out of line".to_string()),
            fee: (qty > 5).then_some(0.5),
            inner: Inner {
                venue: if price > 100.0 {
                    "XNAS".into()
                } else {
                    "a venue name longer than eight".into()
                },
                lots: -(qty as i16),
            },
            initial: symbol.chars().next().unwrap_or('?'),
        }
    }

    fn bytes(t: &Trade) -> Vec<u8> {
        rkyv::to_bytes::<rkyv::rancor::Error>(t).unwrap().to_vec()
    }

    fn check(expr: &str, t: &Trade) -> Option<bool> {
        use crate::Event as _;
        let e = parse_expr(expr).unwrap();
        let f = Filter::compile(&e, Some(Trade::schema()), 0).unwrap();
        let b = bytes(t);
        f.eval(&Rec {
            position: 640,
            timestamp: 1_000,
            type_id: 7,
            payload: &b,
        })
    }

    fn err(expr: &str) -> QueryError {
        use crate::Event as _;
        Filter::compile(&parse_expr(expr).unwrap(), Some(Trade::schema()), 0).unwrap_err()
    }

    #[test]
    fn evaluates_on_archived_bytes() {
        let t = trade("ABCDEFGHIJ", Side::Buy, 101.5, 12);
        let yes = [
            "price > 100",
            "price == 101.5",
            "price >= 101.5 and price < 102",
            "100 < price",
            "qty == 12",
            "qty > 11.5",
            "side == \"Buy\"",
            "side == Buy",
            "Buy == side",
            "side != Sell",
            "symbol == \"ABCDEFGHIJ\"",
            "symbol ^= \"ABC\"",
            "starts_with(symbol, \"AB\")",
            "symbol > \"ABC\"",
            "flag",
            "flag == true",
            "not flag == false",
            "note == \"a long note, stored out of line\"",
            "note != null",
            "note ^= \"a long\"",
            "fee == 0.5",
            "inner.venue == \"XNAS\"",
            "inner.lots == -12",
            "initial == \"A\"",
            "position == 640 and time == 1000 and type == 7",
            "@len > 0",
            "time < \"1970-01-01T00:00:01Z\"",
            "price > 1000 or qty == 12",
            "(price > 1000 or qty == 12) and not side == Sell",
        ];
        for e in yes {
            assert_eq!(check(e, &t), Some(true), "{e}");
        }
        let no = [
            "price > 101.5",
            "qty < 12",
            "side == Sell",
            "symbol == \"ABC\"",
            "symbol ^= \"B\"",
            "not flag",
            "note == null",
            "inner.venue ^= \"XN \"",
            "position != 640",
        ];
        for e in no {
            assert_eq!(check(e, &t), Some(false), "{e}");
        }
        let t = trade("AB", Side::Sell, 99.0, 3);
        for e in [
            "note == null",
            "fee == null",
            "note != \"x\"",
            "inner.venue ^= \"a venue\"",
            "symbol == 'AB'",
            "side == Sell",
        ] {
            assert_eq!(check(e, &t), Some(true), "{e}");
        }
        for e in ["fee > 0", "fee < 0", "note ^= \"\"", "note == \"x\""] {
            assert_eq!(check(e, &t), Some(false), "{e}");
        }
    }

    #[test]
    fn garbage_payloads_are_undecodable_not_panics() {
        use crate::Event as _;
        let e = parse_expr("symbol ^= \"A\" and price > 1 and side == Buy").unwrap();
        let f = Filter::compile(&e, Some(Trade::schema()), 0).unwrap();
        let good = bytes(&trade("ABCDEFGHIJKL", Side::Buy, 101.5, 12));
        for cut in 0..good.len() {
            let _ = f.eval(&Rec {
                position: 0,
                timestamp: 0,
                type_id: 0,
                payload: &good[cut..],
            });
        }
        let mut bad = good.clone();
        for i in 0..bad.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let keep = bad[i];
                bad[i] = v;
                let _ = f.eval(&Rec {
                    position: 0,
                    timestamp: 0,
                    type_id: 0,
                    payload: &bad,
                });
                bad[i] = keep;
            }
        }
        assert_eq!(
            f.eval(&Rec {
                position: 0,
                timestamp: 0,
                type_id: 0,
                payload: &[1, 2, 3],
            }),
            None
        );
    }

    #[test]
    fn header_only_filters_do_not_read_payloads() {
        let e = parse_expr("time >= 5 and (len < 100 or position == 0)").unwrap();
        let f = Filter::compile(&e, None, 0).unwrap();
        assert!(!f.needs_payload());
        let e = parse_expr("time >= 5 and price > 1").unwrap();
        use crate::Event as _;
        assert!(Filter::compile(&e, Some(Trade::schema()), 0)
            .unwrap()
            .needs_payload());
    }

    #[test]
    fn compile_errors() {
        let e = err("pric > 1");
        let QueryError::UnknownField {
            name,
            column,
            known,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!((name.as_str(), *column), ("pric", Some(1)));
        assert!(known.contains(&"inner.venue".to_string()) && known.contains(&"time".to_string()));
        for (expr, col, needle) in [
            ("symbol > 5", 10, "cannot be compared with a number"),
            ("price == \"x\"", 10, "cannot be compared with a string"),
            ("side < Buy", 8, "only == and != apply"),
            ("side == Hold", 9, "variants: Buy, Sell"),
            ("qty ^= \"1\"", 8, "'^=' needs a string field"),
            ("price", 1, "not a bool"),
            ("1 < 2", 1, "compares two values"),
            ("price == qty", 1, "both fields"),
            ("price == null", 10, "never null"),
            ("inner == 1", 10, "cannot be compared"),
            ("time > \"noon\"", 8, "cannot read time"),
        ] {
            match err(expr) {
                QueryError::Type { column, message } => {
                    assert_eq!(column, Some(col), "{expr}: {message}");
                    assert!(message.contains(needle), "{expr}: {message}");
                }
                other => panic!("{expr}: {other}"),
            }
        }
    }
}
