//! The integration tests, in one binary: linked once instead of once per file, and run
//! side by side by one test harness (issue 25). Each module is what was one `tests/*.rs`
//! file; `common` holds the stand-ins they share (one moto server for all).

mod common;

mod aws;
mod aws_channels;
mod aws_paging;
mod browser;
mod cli;
mod cloudformation;
mod console;
mod console_admin;
mod console_local;
mod console_store;
mod consume;
mod crash;
mod fuzz_regressions;
mod http;
mod nginx;
mod notify;
mod oncall;
mod page_ledger;
mod pages;
mod paging_process;
mod readiness;
mod security;
mod worker_path;
