//! Handles: a [`Bus`](bus::Bus) (a directory of topics and its names), a
//! [`Topic`](bus::Topic) (creation, opening and inspection), its
//! [`Publisher`](publisher::Publisher)s and [`Subscriber`](subscriber::Subscriber)s, and
//! how they wait ([`Wait`](wait::Wait)). The protocol itself lives in [`crate::ring`].

pub mod bus;
pub mod names;
pub(crate) mod publisher;
pub(crate) mod subscriber;
pub(crate) mod wait;
