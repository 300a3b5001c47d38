//! Vigie's integration tests, one binary. Each module reads as sentences:
//! what a coordinator or a sysadmin would notice.

mod check;
mod daemon;
mod fuzz;
mod support;
