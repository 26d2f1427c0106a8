//! The single integration test binary: every module below is one boundary of pqwatch.

mod support;

mod alerts;
mod backfill;
mod cli;
mod crash;
mod daemon;
mod delivery;
mod extract;
mod ingest;
mod operator;
mod quarantine;
mod series;
mod shutdown;
mod tidy;
mod web;
