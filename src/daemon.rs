//! When passes run: the cron schedule evaluated in Europe/London, and shutdown on SIGTERM/SIGINT.
//!
//! It knows nothing of what a pass does: it is handed a closure that runs one. Shutdown cancels
//! the pass's stop token, so requests, back-off sleeps and SMTP sessions in flight end at once
//! and the pass returns with what it has committed.

use std::future::Future;
use std::str::FromStr as _;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Utc};
use chrono_tz::Europe::London;

/// The parsed `[schedule] cron` expressions.
#[derive(Clone, Debug)]
pub struct Schedule(Vec<cron::Schedule>);

impl Schedule {
    pub fn parse(exprs: &[&str]) -> Result<Schedule, String> {
        exprs
            .iter()
            .map(|e| {
                cron::Schedule::from_str(e)
                    .map_err(|err| format!("{e:?} is not a cron expression: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Schedule)
    }

    /// The first fire time strictly after `now` of any expression, read as UK wall-clock time.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let uk = now.with_timezone(&London);
        self.0
            .iter()
            .filter_map(|s| s.after(&uk).next())
            .map(|t| t.with_timezone(&Utc))
            .min()
    }
}

/// Runs a pass at start (catching up whatever the cursor says was missed), then on each fire time,
/// until `shutdown` resolves. One pass at a time: the next fire time is computed after a pass ends.
/// `clock` is the wall clock (`Utc::now` in production; tests derive it from tokio's paused
/// time).
pub async fn run<P, F>(
    schedule: Schedule,
    stop: CancellationToken,
    shutdown: impl Future<Output = ()>,
    clock: impl Fn() -> DateTime<Utc>,
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
            let Some(at) = schedule.next_after(clock()) else {
                anyhow::bail!("the schedule has no future fire time");
            };
            tracing::info!(next_poll = %at.with_timezone(&London), "waiting for the next poll");
            let wait = (at - clock()).to_std().unwrap_or_default();
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
                tracing::info!("shutdown requested; cancelling what is in flight");
                stop.cancel();
                running.await;
                return Ok(());
            }
        }
    }
}

/// Tells systemd (Type=notify) what the service is doing: `READY=1`, `STOPPING=1`,
/// `WATCHDOG=1`, `STATUS=...`. Does nothing when not started by systemd.
pub fn sd_notify(state: &str) {
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt as _;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return;
        };
        let path = path.to_string_lossy().into_owned();
        let addr = match path.strip_prefix('@') {
            Some(abs) => SocketAddr::from_abstract_name(abs.as_bytes()),
            None => SocketAddr::from_pathname(&path),
        };
        let sent = addr.and_then(|a| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &a));
        if let Err(e) = sent {
            tracing::warn!("could not notify systemd ({state}): {e}");
        }
    }
}

/// Sends `WATCHDOG=1` at half systemd's WatchdogSec for as long as the runtime is responsive.
pub fn spawn_watchdog() {
    let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    tokio::spawn(async move {
        let every = std::time::Duration::from_micros(usec / 2);
        loop {
            sd_notify("WATCHDOG=1");
            tokio::time::sleep(every).await;
        }
    });
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed when this is called,
/// not when the future is first polled: call it before telling systemd READY, so that a SIGTERM
/// sent right after READY is never met by the default action (death without STOPPING).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match handlers {
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
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn the_schedule_is_read_in_uk_time_across_the_clock_change() {
        let s = Schedule::parse(&["0 0 7 * * *"]).unwrap();
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
    fn the_default_schedule_polls_every_ten_minutes_on_weekday_daytimes_and_hourly_otherwise() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/pqwatch.toml"))
                .unwrap();
        let settings =
            crate::config::Settings::from_toml(std::path::Path::new("x"), &text, []).unwrap();
        let s = Schedule::parse(&settings.schedule.cron.expressions()).unwrap();
        // Tuesday 2026-11-24 09:05 GMT: next at 09:10.
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 9, 5, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 24, 9, 10, 0).unwrap())
        );
        // 22:55 on a weekday: next at 23:00, then midnight.
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 22, 55, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap())
        );
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap())
        );
        // Saturday 10:05: hourly.
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 10, 5, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 28, 11, 0, 0).unwrap())
        );
    }

    #[test]
    fn across_the_spring_clock_change_no_poll_is_skipped_or_doubled() {
        let s = Schedule::parse(&["0 30 * * * *"]).unwrap();
        // 2026-03-29: 01:00 GMT becomes 02:00 BST. Polls at :30 of each UK hour that exists.
        let mut t = Utc.with_ymd_and_hms(2026, 3, 28, 23, 45, 0).unwrap();
        let mut fires = Vec::new();
        for _ in 0..4 {
            t = s.next_after(t).unwrap();
            fires.push(t);
        }
        let gaps: Vec<i64> = fires
            .windows(2)
            .map(|w| (w[1] - w[0]).num_minutes())
            .collect();
        assert_eq!(gaps, vec![60, 60, 60], "{fires:?}");
    }

    /// Runs the daemon loop under tokio's paused clock from `start` for `for_secs`, each pass
    /// taking `pass_secs`; returns the wall-clock start of every pass.
    async fn simulate(
        exprs: &[&str],
        start: DateTime<Utc>,
        for_secs: u64,
        pass_secs: u64,
    ) -> Vec<DateTime<Utc>> {
        let t0 = tokio::time::Instant::now();
        let clock = move || start + chrono::Duration::from_std(t0.elapsed()).unwrap();
        let starts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = starts.clone();
        run(
            Schedule::parse(exprs).unwrap(),
            CancellationToken::new(),
            tokio::time::sleep(std::time::Duration::from_secs(for_secs)),
            clock,
            move || {
                s2.lock().unwrap().push(clock());
                tokio::time::sleep(std::time::Duration::from_secs(pass_secs))
            },
        )
        .await
        .unwrap();
        let v = starts.lock().unwrap().clone();
        v
    }

    #[tokio::test(start_paused = true)]
    async fn polls_happen_on_the_expression_after_one_pass_at_start() {
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 9, 3, 0).unwrap();
        let starts = simulate(&["0 */10 * * * *"], start, 3600, 5).await;
        let mins: Vec<String> = starts
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect();
        assert_eq!(
            mins,
            ["09:03", "09:10", "09:20", "09:30", "09:40", "09:50", "10:00"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn across_the_spring_clock_change_the_loop_neither_skips_nor_doubles_a_poll() {
        // Hourly at :30 UK time through 2026-03-29 01:00 GMT -> 02:00 BST.
        let start = Utc.with_ymd_and_hms(2026, 3, 28, 23, 45, 0).unwrap();
        let starts = simulate(&["0 30 * * * *"], start, 4 * 3600, 1).await;
        let utc: Vec<String> = starts
            .iter()
            .skip(1)
            .map(|t| t.format("%H:%M").to_string())
            .collect();
        assert_eq!(utc, ["00:30", "01:30", "02:30", "03:30"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_gap_or_a_long_pass_is_caught_up_once_not_once_per_missed_poll() {
        // Started after a week down: one pass at once (the cursor covers the week). A pass
        // that outlasts three fire times is followed by the next fire time, not a burst.
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 30).unwrap();
        let starts = simulate(&["0 */10 * * * *"], start, 7200, 35 * 60).await;
        let gaps: Vec<i64> = starts
            .windows(2)
            .map(|w| (w[1] - w[0]).num_minutes())
            .collect();
        assert!(gaps.iter().all(|g| *g >= 35), "{gaps:?}");
        let times: Vec<String> = starts
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect();
        assert_eq!(times, ["09:00", "09:40", "10:20", "11:00"]);
    }

    #[test]
    fn a_bad_expression_is_refused_with_its_text() {
        let e = Schedule::parse(&["every ten minutes"]).unwrap_err();
        assert!(e.contains("every ten minutes"));
    }
}
