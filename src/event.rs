//! Typed events: the [`Event`] trait that `#[derive(shmbus::Event)]` implements.

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::api::low::LowSerializer;
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::{ArenaHandle, SubAllocator};
use rkyv::ser::writer::Buffer;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Portable, Serialize};

use crate::schema::Schema;

/// The error type shmbus uses with rkyv.
pub type RkyvError = rancor::Error;

/// A type that can be published on a typed topic.
///
/// Implemented by `#[derive(shmbus::Event)]`; the payload of a record is the rkyv
/// archive of the value, and the topic stores [`Event::schema`] so tools can decode
/// events without this type. An event whose archive is all inline (no strings or
/// vectors) is serialised straight into the ring by the low-level serializer.
pub trait Event:
    Archive<Archived: Portable + for<'a> CheckBytes<HighValidator<'a, RkyvError>>>
    + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, RkyvError>>
    + for<'a> Serialize<LowSerializer<Buffer<'a>, SubAllocator<'a>, RkyvError>>
{
    /// Stable type id written into every record header (FNV-1a 64 of the type name).
    const TYPE_ID: u64;

    /// The schema of this type (built once, then shared).
    fn schema() -> &'static Schema;
}
