//! Progress of a backfill: a bar over the days of its range, with an ETA and the pass's
//! requests, answers kept and rate, on a terminal; plain log lines otherwise (under systemd).
//!
//! The pipeline reports days done and a line of counts as it goes; this decides how a person
//! sees them.

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
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} days, eta {eta}\n{msg}",
                )
                .expect("the template is valid"),
            );
            // A week of history can take minutes: keep the clock and ETA moving between chunks,
            // and say what is happening before the first chunk's counts arrive.
            bar.enable_steady_tick(Duration::from_millis(500));
            bar.set_message(
                "listing the newest week first; requests, answers kept and rate follow each week",
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
                    let secs = p.started.elapsed().as_secs_f64();
                    let left = p.total.saturating_sub(p.done);
                    let eta = (secs / p.done.max(1) as f64 * left as f64).round() as u64;
                    tracing::info!(
                        days_done = p.done,
                        days = p.total,
                        eta = format!("{}h{:02}m", eta / 3600, eta / 60 % 60),
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
