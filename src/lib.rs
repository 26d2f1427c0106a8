//! pqwatch watches UK Parliament written answers about prisons and probation and stores every
//! figure with its provenance.
//!
//! Data flows one way: fetch → extract → store/diff → notify.
//! - [`config`]: the typed settings, loaded once from TOML plus `PQWATCH_*` overrides.
//! - [`model`]: plain shared data (API records, documents).
//! - [`fetch`]: the Parliament API client (HTTP, paging, rate cap, retries).
//! - [`watch`]: whole-word keyword matching (pure).
//! - [`extract`]: answer HTML to tables of typed observations (pure).
//! - [`store`]: SQLite, migrations, and every SQL statement.
//! - [`pipeline`]: one pass, the only code that composes the stages.
//! - [`daemon`]: when passes run (cron in UK time) and shutdown.
//! - [`progress`]: how a long pass shows its progress.
//! - [`links`]: signing and checking the unsubscribe and confirm links (pure).
//! - [`web`]: the web front (pages, sign-up, the links in emails, `/healthz`), on axum.
//! - [`export`]: a statistic's values as CSV (for the CLI and the web front).
//! - [`cli`] and [`app`]: the command line and what each command does.

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod diff;
pub mod export;
pub mod extract;
pub mod fetch;
pub mod links;
pub mod model;
pub mod notify;
pub mod passlock;
pub mod pipeline;
pub mod private_files;
pub mod progress;
pub mod series;
pub mod store;
pub mod subscribers;
pub mod title;
pub mod watch;
pub mod web;
