//! The token changes between two versions of a set of files.
