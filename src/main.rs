//! The `pqwatch` binary: parses the command line, starts logging, loads the config once, runs the
//! command, and turns the outcome into an exit code with the whole cause chain printed.
//!
//! Exit codes (defined once, in `app::exit`): 0 success, 1 failure while running, 2 bad usage
//! or config, 3 not found.

use std::process::ExitCode;

use clap::Parser as _;
use pqwatch::app;
use pqwatch::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pqwatch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(app::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pqwatch: {e:#}");
            ExitCode::from(app::exit_code(&e))
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). Colour only on a terminal, and never
/// with NO_COLOR set (https://no-color.org). Under systemd (JOURNAL_STREAM set) the timestamp is
/// left out too, since journald adds its own.
fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let colour = std::io::stderr().is_terminal()
        && !journald
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour);
    if journald {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
