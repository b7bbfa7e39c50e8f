//! The platform floor: system calls and clocks (`os`), the record clock (`clock`), the
//! atomics facade that switches to loom under `--cfg loom` (`sync`), test-only fault
//! points (`fault`) and the ring file mapping (`mapping`). Everything unsafe that talks
//! to the kernel lives here; the layers above call it through safe functions.

pub(crate) mod clock;
pub(crate) mod fault;
pub(crate) mod mapping;
pub(crate) mod os;
pub(crate) mod sync;
