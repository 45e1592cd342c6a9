//! Turning a downloaded result zip into a validated [`Export`] without writing any entry to disk.

mod limits;

pub use limits::ArchiveLimits;
