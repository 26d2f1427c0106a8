//! When passes run: the cron schedule evaluated in Europe/London, and shutdown on SIGTERM/SIGINT.
//!
//! It knows nothing of what a pass does: it is handed a closure that runs one. Shutdown sets the
//! pass's stop flag, so the pass stops at its next safe point (between records) and returns.

use std::future::Future;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Europe::London;

/// A parsed `[schedule] cron` expression.
#[derive(Clone, Debug)]
pub struct Schedule(cron::Schedule);

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        cron::Schedule::from_str(expr)
            .map(Schedule)
            .map_err(|e| format!("{expr:?} is not a cron expression: {e}"))
    }

    /// The first fire time strictly after `now`, read as UK wall-clock time.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0
            .after(&now.with_timezone(&London))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Runs a pass at start (catching up whatever the cursor says was missed), then on each fire time,
/// until `shutdown` resolves. One pass at a time: the next fire time is computed after a pass ends.
pub async fn run<P, F>(
    schedule: Schedule,
    stop: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
    mut pass: P,
) -> anyhow::Result<()>
where
    P: FnMut() -> F,
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut next_is_now = true;
    loop {
        if !next_is_now {
            let Some(at) = schedule.next_after(Utc::now()) else {
                anyhow::bail!("the schedule has no future fire time");
            };
            tracing::info!(next_poll = %at.with_timezone(&London), "waiting for the next poll");
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested while idle");
                    return Ok(());
                }
            }
        }
        next_is_now = false;
        let running = pass();
        tokio::pin!(running);
        tokio::select! {
            _ = &mut running => {}
            _ = &mut shutdown => {
                tracing::info!("shutdown requested; finishing the record in hand");
                stop.store(true, Ordering::Relaxed);
                running.await;
                return Ok(());
            }
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn the_schedule_is_read_in_uk_time_across_the_clock_change() {
        let s = Schedule::parse("0 0 7 * * *").unwrap();
        // Winter: 07:00 GMT is 07:00 UTC.
        let jan = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_after(jan),
            Some(Utc.with_ymd_and_hms(2026, 1, 11, 7, 0, 0).unwrap())
        );
        // Summer: 07:00 BST is 06:00 UTC.
        let jul = Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_after(jul),
            Some(Utc.with_ymd_and_hms(2026, 7, 11, 6, 0, 0).unwrap())
        );
    }

    #[test]
    fn a_bad_expression_is_refused_with_its_text() {
        let e = Schedule::parse("every ten minutes").unwrap_err();
        assert!(e.contains("every ten minutes"));
    }
}
