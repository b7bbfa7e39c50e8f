//! What `#[derive(shmbus::Event)]` builds a [`Schema`] from: the [`Describe`] trait for
//! every supported field type, and the helpers the derive calls.

use super::{Field, Kind, Schema};

/// A type that can be a field of an event: it knows its [`Kind`].
///
/// Implemented here for the supported std types and by `#[derive(shmbus::Event)]` for
/// structs and unit-only enums.
///
/// Other field types are a compile error naming the field, e.g.
///
/// ```compile_fail
/// #[shmbus::event]
/// struct Bad {
///     map: std::collections::HashMap<u32, u32>,
/// }
/// ```
///
/// ```compile_fail
/// #[shmbus::event]
/// struct Bad {
///     pair: (u32, u32),
/// }
/// ```
///
/// ```compile_fail
/// #[derive(shmbus::rkyv::Archive, shmbus::rkyv::Serialize)]
/// #[rkyv(crate = shmbus::rkyv)]
/// struct NotAnEvent {
///     x: u32,
/// }
/// #[shmbus::event]
/// struct Bad {
///     inner: NotAnEvent,
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a shmbus event",
    label = "unsupported field type",
    note = "supported: bool, u8..u64, i8..i64, usize, isize, f32, f64, char, String, \
            Vec<T>, Option<T>, [T; N], and types with #[derive(shmbus::Event)]"
)]
pub trait Describe {
    /// The kind of `Self`'s archived form.
    fn describe() -> Kind;
}

macro_rules! describe_prim {
    ($($t:ty => $k:ident),* $(,)?) => {
        $(impl Describe for $t {
            fn describe() -> Kind {
                Kind::$k
            }
        })*
    };
}

describe_prim! {
    bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64,
    char => Char, String => String,
}

/// rkyv archives `usize` as `ArchivedUsize` (32 bits with default features).
impl Describe for usize {
    fn describe() -> Kind {
        match std::mem::size_of::<rkyv::Archived<usize>>() {
            2 => Kind::U16,
            4 => Kind::U32,
            _ => Kind::U64,
        }
    }
}

/// rkyv archives `isize` as `ArchivedIsize` (32 bits with default features).
impl Describe for isize {
    fn describe() -> Kind {
        match std::mem::size_of::<rkyv::Archived<isize>>() {
            2 => Kind::I16,
            4 => Kind::I32,
            _ => Kind::I64,
        }
    }
}

/// `Vec<u8>` is [`Kind::Bytes`]; any other `Vec<T>` is [`Kind::Vec`].
impl<T: Describe> Describe for Vec<T> {
    fn describe() -> Kind {
        match T::describe() {
            Kind::U8 => Kind::Bytes,
            elem => Kind::Vec(Box::new(elem)),
        }
    }
}

impl<T: Describe> Describe for Option<T> {
    fn describe() -> Kind {
        Kind::Option(Box::new(T::describe()))
    }
}

impl<T: Describe, const N: usize> Describe for [T; N] {
    fn describe() -> Kind {
        Kind::Array {
            elem: Box::new(T::describe()),
            len: u32::try_from(N).unwrap_or(u32::MAX),
        }
    }
}

/// Used by `#[derive(shmbus::Event)]`: the field `field_name` of `owner` at `offset`,
/// after checking that [`Describe`] agrees with rkyv on the archived size and alignment.
///
/// # Panics
///
/// If they disagree (e.g. a `#[rkyv(with = …)]` wrapper changed the archived type).
#[doc(hidden)]
pub fn __field<T: Describe + rkyv::Archive>(owner: &str, field_name: &str, offset: usize) -> Field {
    let kind = T::describe();
    check_layout::<T>(owner, field_name, &kind);
    Field {
        name: field_name.to_owned(),
        offset: u32::try_from(offset).unwrap_or(u32::MAX),
        kind,
    }
}

fn check_layout<T: rkyv::Archive>(owner: &str, what: &str, kind: &Kind) {
    let real = (
        std::mem::size_of::<T::Archived>(),
        std::mem::align_of::<T::Archived>(),
    );
    let described = (kind.size() as usize, kind.align() as usize);
    assert!(
        real == described,
        "shmbus: {owner}::{what}: rkyv archives `{}` as {} bytes aligned to {}, \
         but its schema kind `{kind}` says {} aligned to {}",
        std::any::type_name::<T>(),
        real.0,
        real.1,
        described.0,
        described.1,
    );
}

/// Used by `#[derive(shmbus::Event)]`: builds the schema of `T`.
///
/// # Panics
///
/// If the schema is invalid (e.g. nested deeper than [`MAX_DEPTH`]) or disagrees with
/// rkyv's layout; the message names the type.
#[doc(hidden)]
pub fn __schema_of<T: Describe + rkyv::Archive>(type_name: &str) -> Schema {
    let root = T::describe();
    check_layout::<T>(type_name, "<root>", &root);
    match Schema::new(type_name, root) {
        Ok(schema) => schema,
        Err(e) => panic!("shmbus: cannot build the schema of `{type_name}`: {e}"),
    }
}
