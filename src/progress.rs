//! Progress of a long pass: a bar with counts and rate on a terminal, plain log lines otherwise.
//!
//! The pipeline reports records as it goes; this decides how a person sees them.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often, without a terminal, a progress line is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Mutex<Plain>>,
}

struct Plain {
    started: Instant,
    last: Instant,
    done: u64,
    total: u64,
}

impl Progress {
    /// No output at all (scheduled passes log one line per pass instead).
    pub fn quiet() -> Progress {
        Progress {
            bar: None,
            plain: None,
        }
    }

    /// A bar when stderr is a terminal, a log line every few seconds when it is not.
    pub fn for_backfill() -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} records ({per_sec}, eta {eta}) {msg}",
                )
                .expect("the template is valid"),
            );
            Progress {
                bar: Some(bar),
                plain: None,
            }
        } else {
            let now = Instant::now();
            Progress {
                bar: None,
                plain: Some(Mutex::new(Plain {
                    started: now,
                    last: now,
                    done: 0,
                    total: 0,
                })),
            }
        }
    }

    pub fn add_total(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(n);
        }
        if let Some(p) = &self.plain {
            if let Ok(mut p) = p.lock() {
                p.total += n;
            }
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if let Some(p) = &self.plain {
            if let Ok(mut p) = p.lock() {
                p.done += n;
                if p.last.elapsed() >= LOG_EVERY {
                    p.last = Instant::now();
                    let rate = p.done as f64 / p.started.elapsed().as_secs_f64().max(1e-9);
                    tracing::info!(
                        done = p.done,
                        total = p.total,
                        rate = format!("{rate:.1}/s"),
                        "backfill progress"
                    );
                }
            }
        }
    }

    /// A milestone (a finished chunk): the bar's message, or a log line.
    pub fn log_line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_owned()),
            None if self.plain.is_some() => tracing::info!("{line}"),
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
