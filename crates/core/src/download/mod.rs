//! Downloading a job's result zip: streamed to a temp file, bounded, and only from allowed hosts.

mod limits;

pub use limits::DownloadLimits;
