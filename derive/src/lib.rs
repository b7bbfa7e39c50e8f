//! `#[derive(Event)]` and `#[event]` for shmbus (use them through `shmbus::Event` and
//! `shmbus::event`).
//!
//! The derive implements `::shmbus::schema::Describe` (the type's schema kind, used when
//! the type is a field of another event) and `::shmbus::event::Event` (a `TYPE_ID` that
//! is the FNV-1a 64 of the type's name, and a schema built once in a `OnceLock`).
//! Field offsets come from `core::mem::offset_of!` on the rkyv-generated archived type,
//! so the type must also derive rkyv's `Archive` (which `#[shmbus::event]` adds).
//!
//! Supported: structs with named fields and unit-only enums, without generics. Field
//! types are checked syntactically here (references, tuples, `Box`, maps, … are a
//! `compile_error!` naming the field) and by the `Describe` bound at type-check time.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Data, DeriveInput, Error, Fields, GenericArgument, PathArguments, Type,
};

/// Derives `shmbus::Event` (and `shmbus::schema::Describe`) for a struct with named
/// fields or a unit-only enum that also derives rkyv's `Archive` and `Serialize`.
///
/// ```ignore
/// #[derive(shmbus::rkyv::Archive, shmbus::rkyv::Serialize, shmbus::rkyv::Deserialize, shmbus::Event)]
/// #[rkyv(crate = shmbus::rkyv)]
/// struct Trade { price: f64, qty: u32 }
/// ```
#[proc_macro_derive(Event)]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Makes a type a shmbus event in one line: adds
/// `#[derive(::shmbus::rkyv::Archive, ::shmbus::rkyv::Serialize,
/// ::shmbus::rkyv::Deserialize, ::shmbus::Event)]` and
/// `#[rkyv(crate = ::shmbus::rkyv)]`.
///
/// ```ignore
/// #[shmbus::event]
/// struct Trade { price: f64, qty: u32 }
/// ```
#[proc_macro_attribute]
pub fn event(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    if !attr.is_empty() {
        return Error::new(attr.span(), "#[shmbus::event] takes no arguments")
            .into_compile_error()
            .into();
    }
    let item = TokenStream2::from(item);
    quote! {
        #[derive(
            ::shmbus::rkyv::Archive,
            ::shmbus::rkyv::Serialize,
            ::shmbus::rkyv::Deserialize,
            ::shmbus::Event
        )]
        #[rkyv(crate = ::shmbus::rkyv)]
        #item
    }
    .into()
}

fn expand(input: &DeriveInput) -> Result<TokenStream2, Error> {
    let ident = &input.ident;
    let name = ident.unraw().to_string();
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(Error::new(
            input.generics.span(),
            format!("shmbus: event `{name}` cannot be generic"),
        ));
    }
    check_rkyv_attrs(&input.attrs, &["as", "remote"], &name)?;

    let describe_body = match &input.data {
        Data::Struct(data) => {
            let Fields::Named(fields) = &data.fields else {
                return Err(Error::new(
                    ident.span(),
                    format!(
                        "shmbus: event `{name}` must have named fields \
                         (write `struct {name} {{ … }}`)"
                    ),
                ));
            };
            let mut field_exprs = Vec::new();
            for field in &fields.named {
                let Some(fident) = &field.ident else {
                    continue;
                };
                let fname = fident.unraw().to_string();
                check_rkyv_attrs(
                    &field.attrs,
                    &["with", "niche"],
                    &format!("{name}::{fname}"),
                )?;
                check_type(&field.ty, &field.ty, &name, &fname)?;
                let ty = &field.ty;
                field_exprs.push(quote_spanned! {ty.span()=>
                    ::shmbus::schema::__field::<#ty>(
                        #name,
                        #fname,
                        ::core::mem::offset_of!(__ShmbusArchived, #fident),
                    )
                });
            }
            quote! {
                type __ShmbusArchived = <#ident as ::shmbus::rkyv::Archive>::Archived;
                ::shmbus::schema::Kind::Struct(::shmbus::schema::StructDef {
                    name: ::std::string::String::from(#name),
                    size: ::core::mem::size_of::<__ShmbusArchived>() as u32,
                    align: ::core::mem::align_of::<__ShmbusArchived>() as u32,
                    fields: ::std::vec![#(#field_exprs),*],
                })
            }
        }
        Data::Enum(data) => {
            if data.variants.is_empty() {
                return Err(Error::new(
                    ident.span(),
                    format!("shmbus: enum `{name}` needs at least one variant"),
                ));
            }
            let mut variants = Vec::new();
            for v in &data.variants {
                let vname = v.ident.unraw().to_string();
                if !matches!(v.fields, Fields::Unit) {
                    return Err(Error::new(
                        v.span(),
                        format!(
                            "shmbus: variant `{name}::{vname}` has fields; only unit-only \
                             enums can be events or event fields"
                        ),
                    ));
                }
                let vident = &v.ident;
                variants.push(quote! {
                    ::shmbus::schema::Variant {
                        // The archived enum is `repr(u8)` with the same discriminants.
                        tag: #ident::#vident as u8,
                        name: ::std::string::String::from(#vname),
                    }
                });
            }
            quote! {
                ::shmbus::schema::Kind::Enum(::shmbus::schema::EnumDef {
                    name: ::std::string::String::from(#name),
                    variants: ::std::vec![#(#variants),*],
                })
            }
        }
        Data::Union(_) => {
            return Err(Error::new(
                ident.span(),
                format!("shmbus: union `{name}` cannot be an event"),
            ));
        }
    };

    Ok(quote! {
        #[automatically_derived]
        impl ::shmbus::schema::Describe for #ident {
            fn describe() -> ::shmbus::schema::Kind {
                #describe_body
            }
        }

        #[automatically_derived]
        impl ::shmbus::event::Event for #ident {
            const TYPE_ID: u64 = ::shmbus::schema::fnv1a64(#name.as_bytes());

            fn schema() -> &'static ::shmbus::schema::Schema {
                static SCHEMA: ::std::sync::OnceLock<::shmbus::schema::Schema> =
                    ::std::sync::OnceLock::new();
                SCHEMA.get_or_init(|| ::shmbus::schema::__schema_of::<#ident>(#name))
            }
        }
    })
}

/// Rejects `#[rkyv(...)]` attributes containing any of `banned` (they change the
/// archived type in ways the schema cannot describe).
fn check_rkyv_attrs(attrs: &[syn::Attribute], banned: &[&str], what: &str) -> Result<(), Error> {
    for attr in attrs {
        if !attr.path().is_ident("rkyv") {
            continue;
        }
        let Ok(list) = attr.meta.require_list() else {
            continue;
        };
        for tt in list.tokens.clone() {
            if let proc_macro2::TokenTree::Ident(i) = &tt {
                if banned.iter().any(|b| i == b) {
                    return Err(Error::new(
                        attr.span(),
                        format!(
                            "shmbus: `#[rkyv({i} = …)]` on `{what}` changes the archived \
                             layout, which the event schema cannot describe"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

const SUPPORTED: &str = "supported: bool, u8..u64, i8..i64, usize, isize, f32, f64, char, \
                         String, Vec<T>, Option<T>, [T; N], and types with \
                         #[derive(shmbus::Event)]";

/// Types that are certainly not supported, by the last segment of their path.
const UNSUPPORTED: &[&str] = &[
    "u128",
    "i128",
    "f16",
    "f128",
    "str",
    "Box",
    "Rc",
    "Arc",
    "Cow",
    "HashMap",
    "HashSet",
    "BTreeMap",
    "BTreeSet",
    "VecDeque",
    "LinkedList",
    "BinaryHeap",
    "Result",
    "PhantomData",
    "Cell",
    "RefCell",
    "Mutex",
    "RwLock",
    "NonZeroU8",
    "NonZeroU16",
    "NonZeroU32",
    "NonZeroU64",
    "NonZeroI8",
    "NonZeroI16",
    "NonZeroI32",
    "NonZeroI64",
    "NonZero",
    "Duration",
    "SystemTime",
    "Instant",
    "PathBuf",
    "OsString",
    "CString",
];

/// Syntactic check of a field type; `whole` is the field's full type for the message.
fn check_type(ty: &Type, whole: &Type, owner: &str, field: &str) -> Result<(), Error> {
    let unsupported = |why: &str| {
        let shown = whole
            .to_token_stream()
            .to_string()
            .replace(" :: ", "::")
            .replace(":: ", "::")
            .replace(" <", "<")
            .replace("< ", "<")
            .replace(" >", ">")
            .replace(" ;", ";");
        Err(Error::new(
            ty.span(),
            format!(
                "shmbus: field `{owner}::{field}` has type `{shown}`, which an event cannot \
                 hold ({why}); {SUPPORTED}"
            ),
        ))
    };
    match ty {
        Type::Paren(p) => check_type(&p.elem, whole, owner, field),
        Type::Group(g) => check_type(&g.elem, whole, owner, field),
        Type::Array(a) => check_type(&a.elem, whole, owner, field),
        Type::Path(p) => {
            if p.qself.is_some() {
                return unsupported("qualified paths are not supported");
            }
            let Some(last) = p.path.segments.last() else {
                return unsupported("empty path");
            };
            let id = last.ident.to_string();
            if UNSUPPORTED.contains(&id.as_str()) {
                return unsupported(&format!("`{id}` is not supported"));
            }
            match (&last.arguments, id.as_str()) {
                (PathArguments::AngleBracketed(args), "Vec" | "Option") => {
                    for arg in &args.args {
                        if let GenericArgument::Type(t) = arg {
                            check_type(t, whole, owner, field)?;
                        }
                    }
                    Ok(())
                }
                (PathArguments::None, _) => Ok(()),
                _ => unsupported("generic types other than Vec<T> and Option<T> are not supported"),
            }
        }
        Type::Reference(_) => unsupported("references are not supported"),
        Type::Tuple(t) if t.elems.is_empty() => unsupported("`()` is not supported"),
        Type::Tuple(_) => unsupported("tuples are not supported; use a struct"),
        Type::Slice(_) => unsupported("slices are not supported; use Vec<T>"),
        Type::Ptr(_) => unsupported("pointers are not supported"),
        _ => unsupported("this kind of type is not supported"),
    }
}
