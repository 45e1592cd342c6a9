//! Courier's providers: the git workspace that writes an export into a repository and
//! pushes it ([`git`]), and the pull-request providers that come on top of it.

pub mod git;
