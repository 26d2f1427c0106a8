//! Carries out each command: builds the stages from the settings and calls the pipeline or the
//! store. Output formatting for people and for scripts (`--json`) lives here.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::Utc;

use crate::cli::{
    AlertsCommand, AnswersCommand, Cli, Command, KeysCommand, MailCommand, PollArgs, SeriesCommand,
    SubscribersCommand,
};
use crate::config::Settings;
use crate::daemon::{self, Schedule};
use crate::fetch::Client;
use crate::model::DocKind;
use crate::notify::mailer::Mailer;
use crate::passlock::PassLock;
use crate::pipeline::{self, AlertSettings, Deps, Mode, PassReport};
use crate::progress::Progress;
use crate::store::Store;
use crate::subscribers::{self as subs, NewSubscriber};
use crate::watch::Matcher;

/// A mistake in how pqwatch was invoked (exit code 2), as opposed to a failure while running.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The answer, statistic or subscriber a command names does not exist (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// The exit codes, defined once (the README's table): 0 success, 1 a failure while running
/// (network, SMTP, disk, a pass that left work to retry, `status` unhealthy), 2 bad usage or
/// config (a flag, an argument, a setting, a file named that cannot be used, a database that
/// does not exist), 3 not found (the answer, statistic or subscriber named). Panics (101) are bugs.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
}

/// The exit code for an error that ended a command.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<NotFound>().is_some() {
        exit::NOT_FOUND
    } else if e.downcast_ref::<UsageError>().is_some()
        || e.downcast_ref::<crate::config::ConfigError>().is_some()
    {
        exit::USAGE
    } else {
        exit::FAILED
    }
}

/// A pass that finished but left records held or pages failed (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("the pass could not read {}; they are retried on the next pass. First: {}", [(*pages, "list page", "list pages"), (*held, "record", "records")].iter().filter(|(n, _, _)| *n > 0).map(|(n, a, b)| plural(*n, a, b)).collect::<Vec<_>>().join(" and "), first.as_deref().unwrap_or("-"))]
pub struct IncompletePass {
    pub held: u64,
    pub pages: u64,
    /// The first failure, saying what failed and what to check.
    pub first: Option<String>,
}

/// A pass stopped by SIGTERM or SIGINT before it finished (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("stopped by a signal (SIGTERM or SIGINT) before the pass finished: what was stored is kept, and the rest is read on the next pass")]
pub struct Interrupted;

/// "1 subscriber", "2 subscribers".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Carries out the command. The config is loaded only by commands that need it, so
/// `pqwatch extract` works anywhere.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    let settings = || Settings::discover(cli.config.as_deref(), std::env::vars());
    if let Command::Extract { ref file, json } = cli.command {
        return extract(file, json);
    }
    let settings = settings()?;
    match cli.command {
        Command::Run => run(settings).await,
        Command::Poll(args) => poll(settings, args).await,
        Command::Backfill(args) => {
            let until = args.until.unwrap_or_else(|| pipeline::uk_today(Utc::now()));
            if args.since > until {
                return Err(UsageError(format!(
                    "--since {} is after --until {until}; give the earlier day to --since",
                    args.since
                ))
                .into());
            }
            let poll_args = PollArgs {
                once: true,
                from: Some(args.since),
                to: Some(until),
                alert: args.alert,
            };
            poll(settings, poll_args).await
        }
        Command::Answers(cmd) => answers(settings, cmd),
        Command::Subscribe {
            email,
            keywords,
            digest,
            bodies,
            houses,
            name,
            include_no_figures,
            confirmed,
        } => {
            let usage =
                |flag: &str, e: String| anyhow::Error::from(UsageError(format!("{flag}: {e}")));
            let email = subs::parse_email(&email).map_err(|e| usage("EMAIL", e))?;
            let keywords = keywords
                .map(|k| subs::parse_keywords(&k))
                .transpose()
                .map_err(|e| usage("--keywords", e))?;
            let name = name
                .map(|n| subs::parse_name(&n))
                .transpose()
                .map_err(|e| usage("--name", e))?;
            let bodies = bodies
                .map(|b| subs::parse_bodies(&b))
                .transpose()
                .map_err(|e| usage("--bodies", e))?;
            let houses = houses
                .map(|h| subs::parse_houses(&h))
                .transpose()
                .map_err(|e| usage("--houses", e))?;
            let frequency = digest
                .map(|d| subs::Frequency::parse(&d))
                .transpose()
                .map_err(|e| usage("--digest", e))?;
            let store = create_store(&settings)?;
            let s = match store.subscriber(&email)? {
                // Only what was given changes.
                Some(old) => NewSubscriber {
                    email,
                    name: name.unwrap_or(old.name),
                    keywords: keywords.unwrap_or(old.keywords),
                    bodies: bodies.unwrap_or(old.bodies),
                    houses: houses.unwrap_or(old.houses),
                    frequency: frequency.unwrap_or(old.frequency),
                    include_no_figures: include_no_figures.unwrap_or(old.include_no_figures),
                    confirmed,
                },
                None => NewSubscriber {
                    keywords: keywords.ok_or_else(|| {
                        usage(
                            "--keywords",
                            format!("{email} is not subscribed yet, so give the words or phrases to follow, e.g. --keywords \"drones, assaults on staff\""),
                        )
                    })?,
                    email,
                    name: name.unwrap_or_default(),
                    bodies: bodies.unwrap_or_default(),
                    houses: houses.unwrap_or_default(),
                    frequency: frequency.unwrap_or(subs::Frequency::Instant),
                    include_no_figures: include_no_figures.unwrap_or(false),
                    confirmed,
                },
            };
            subscribe(settings, store, s).await
        }
        Command::Unsubscribe { email } => {
            let email = subs::parse_email(&email).map_err(|e| UsageError(format!("EMAIL: {e}")))?;
            let mut store = open_store(&settings)?;
            if store.unsubscribe(&email, Utc::now())? {
                println!("unsubscribed {email}");
                Ok(())
            } else {
                Err(NotFound(format!(
                    "{email} is not subscribed; `pqwatch subscribers list` shows who is"
                ))
                .into())
            }
        }
        Command::Subscribers(SubscribersCommand::List { json }) => {
            let list = open_store(&settings)?.subscribers()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for s in &list {
                    println!(
                        "{:<32} {:<8} {:<11} {}",
                        s.email,
                        s.frequency.as_str(),
                        if s.suspended {
                            "suspended"
                        } else if s.confirmed {
                            "confirmed"
                        } else {
                            "unconfirmed"
                        },
                        s.keywords.join(", ")
                    );
                }
                eprintln!("{}", plural(list.len() as u64, "subscriber", "subscribers"));
            }
            Ok(())
        }
        Command::Subscribers(SubscribersCommand::Import { file }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            let list = subs::parse_csv(&text).map_err(|errors| {
                UsageError(format!(
                    "{}: nothing imported; fix these rows and import again:\n  {}",
                    file.display(),
                    errors.join("\n  ")
                ))
            })?;
            let with_tokens = list
                .into_iter()
                .map(|s| Ok((s, token()?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let n = create_store(&settings)?.import_subscribers(&with_tokens, Utc::now())?;
            println!("imported {}", plural(n as u64, "subscriber", "subscribers"));
            Ok(())
        }
        Command::Subscribers(SubscribersCommand::Reactivate { email }) => {
            let email = subs::parse_email(&email).map_err(|e| UsageError(format!("EMAIL: {e}")))?;
            if open_store(&settings)?.reactivate(&email)? {
                println!("reactivated {email}: alerts are sent to it again");
                Ok(())
            } else {
                Err(NotFound(format!(
                    "{email} is not subscribed; `pqwatch subscribers list` shows who is"
                ))
                .into())
            }
        }
        Command::Keys(KeysCommand::Rotate) => {
            pipeline::rotate_link_key(&mut open_store(&settings)?)?;
            println!("rotated the key that signs links: links in emails already sent no longer work (their pages say so), emails still queued get new links, and every running pqwatch uses the new key from its next request or pass");
            Ok(())
        }
        Command::Alerts(AlertsCommand::List { pending, json }) => {
            let list = open_store(&settings)?.alerts(pending)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for a in &list {
                    println!(
                        "{:>6} {:<8} {:<12} {:<30} {} {}",
                        a.id,
                        a.status,
                        a.kind,
                        a.email,
                        a.sent_at
                            .as_deref()
                            .or(a.next_attempt_at.as_deref())
                            .unwrap_or("-"),
                        a.last_error
                            .as_deref()
                            .map(|e| format!("({e})"))
                            .unwrap_or_default()
                    );
                }
                eprintln!("{}", plural(list.len() as u64, "alert", "alerts"));
            }
            Ok(())
        }
        Command::Status { json } => status(settings, json),
        Command::Backup { file } => {
            if file.exists() {
                return Err(UsageError(format!(
                    "{} exists already; give a new file name (a backup never overwrites)",
                    file.display()
                ))
                .into());
            }
            let store = open_store(&settings)?;
            store.backup(&file)?;
            println!(
                "backed up {} to {}",
                settings.database.path.display(),
                file.display()
            );
            Ok(())
        }
        Command::Series(cmd) => series(settings, cmd),
        Command::Changes { since, json } => changes(settings, since, json),
        Command::Mail(MailCommand::Test { address }) => mail_test(&settings, &address).await,
        Command::Extract { .. } => unreachable!("handled above"),
    }
}

/// The key that signs links in emails, as the database holds it now.
pub use crate::pipeline::link_signer;

/// 128 random bits from the operating system, hex: the subscriber's unsubscribe token.
fn token() -> anyhow::Result<String> {
    pipeline::random_hex(16)
}

/// `pqwatch subscribe`: the change and any confirmation email are queued in the database. Only
/// the holder of the pass lock sends the outbox: when a service runs, it sends the email within
/// seconds; when none does, this command takes the lock briefly and sends it itself.
async fn subscribe(settings: Settings, mut store: Store, s: NewSubscriber) -> anyhow::Result<()> {
    let email = s.email.clone();
    let existed = store.subscriber(&email)?.is_some();
    let alerts = AlertSettings::from_mail(&settings.mail, link_signer(&mut store)?);
    let done = pipeline::sign_up(&mut store, &alerts, &s, Utc::now())?;
    let id = done.id;
    let confirmation = if !done.confirmation_queued {
        None
    } else if let Some(_lock) = PassLock::try_acquire(&settings.database.path)? {
        let deps = deps(&settings, store)?;
        let sent = pipeline::flush_outbox(&deps, Utc::now()).await?;
        store = Store::open(&settings.database.path)?;
        Some(match (sent.sent > 0, &*deps.mailer) {
            (true, Mailer::Files { dir, .. }) => {
                format!("confirmation email written as an .eml file to {}", dir.display())
            }
            (true, _) => "confirmation email sent".to_owned(),
            (false, _) => {
                "confirmation email queued (not sent yet: `pqwatch alerts list --pending` shows why)"
                    .to_owned()
            }
        })
    } else {
        Some(
            "confirmation email queued; the running pqwatch service sends it (`pqwatch alerts list --pending` shows it until then)"
                .to_owned(),
        )
    };
    let row = store
        .subscriber(&email)?
        .ok_or_else(|| anyhow::anyhow!("{email} vanished while being subscribed"))?;
    println!(
        "{} {email} (id {id})",
        if existed { "updated" } else { "subscribed" }
    );
    print!("{}", describe_subscriber(&row));
    if let Some(c) = confirmation {
        println!("{c}");
    }
    Ok(())
}

/// A subscriber's settings, one per line, as `subscribe` shows them after a change.
fn describe_subscriber(s: &crate::store::SubscriberRow) -> String {
    let list = |v: Vec<String>, none: &str| {
        if v.is_empty() {
            none.to_owned()
        } else {
            v.join(", ")
        }
    };
    format!(
        "  name:               {}\n  keywords:           {}\n  digest:             {}\n  bodies:             {}\n  houses:             {}\n  include_no_figures: {}\n  confirmed:          {}\n",
        if s.name.is_empty() { "-" } else { &s.name },
        s.keywords.join(", "),
        match s.frequency {
            subs::Frequency::Daily => "daily",
            subs::Frequency::Weekly => "weekly (Mondays)",
            subs::Frequency::Instant => "instant (no digest)",
        },
        list(s.bodies.iter().map(|b| b.to_string()).collect(), "all"),
        list(s.houses.clone(), "both"),
        if s.include_no_figures { "yes" } else { "no" },
        match &s.confirmed_at {
            Some(t) => format!("yes, {t}"),
            None => "no (waiting for the subscriber to confirm)".to_owned(),
        }
    )
}

/// `pqwatch mail test ADDRESS`: one message through the configured transport, and its answer.
async fn mail_test(settings: &Settings, address: &str) -> anyhow::Result<()> {
    let to = subs::parse_email(address).map_err(|e| UsageError(format!("ADDRESS: {e}")))?;
    let mailer = Mailer::from_settings(&settings.mail)?;
    let from_addr = settings
        .mail
        .from
        .parse::<lettre::message::Mailbox>()
        .map(|m| m.email)
        .map_err(|e| UsageError(format!("[mail] from: {e}")))?;
    let via = if settings.mail.smtp_url.is_empty() {
        format!(
            "no SMTP is configured ([mail] smtp_url is empty), so it is written as an .eml file to {}",
            settings.mail.outbox_dir.display()
        )
    } else {
        format!("through {}", settings.mail.smtp_url)
    };
    let message = crate::notify::mailer::Outgoing {
        message_id: format!("pqwatch.test.{}@{}", token()?, from_addr.domain()),
        to: to.clone(),
        to_name: String::new(),
        subject: "pqwatch test message".into(),
        text: format!(
            "This is a test message from pqwatch, sent {via}.\n\nIf you can read it, alerts can reach this address.\n"
        ),
        html: format!(
            "<p>This is a test message from pqwatch, sent {}.</p><p>If you can read it, alerts can reach this address.</p>",
            crate::notify::render::esc(&via)
        ),
        list_unsubscribe: format!("<mailto:{from_addr}>"),
    };
    println!("sending a test message to {to} {via}");
    let answer = mailer
        .send_reporting(&message)
        .await
        .map_err(|e| anyhow::anyhow!("the test message was not accepted: {e}; check [mail] smtp_url, smtp_username, the password and tls_ca_file"));
    mailer.close_idle().await;
    println!("{}", answer?);
    Ok(())
}

/// `pqwatch extract FILE`: no config, database or network is touched.
fn extract(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    // Standard input and a file are one kind of input: unreadable or not UTF-8 is exit 2 either way.
    let (bytes, what) = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        let read = std::io::Read::read_to_end(&mut std::io::stdin(), &mut b);
        (read.map(|_| b), "standard input".to_owned())
    } else {
        (std::fs::read(file), file.display().to_string())
    };
    let fix = "give a single-question API response (JSON), an HTML fragment or a text file";
    let bytes = bytes.map_err(|e| UsageError(format!("cannot read {what}: {e}; {fix}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| UsageError(format!("{what} is not UTF-8 text ({e}); {fix}")))?;
    let trimmed = text.trim_start();
    let result = if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed)
            .map_err(|e| UsageError(format!("{what} is not valid JSON: {e}")))?;
        let value = v.get("value").unwrap_or(&v);
        let html = value
            .get("answerText")
            .or_else(|| value.get("text"))
            .or_else(|| value.get("answer_html"))
            .and_then(|h| h.as_str())
            .ok_or_else(|| {
                UsageError(format!(
                    "{what} has no answerText: give a single-question API response ({{\"value\": {{...}}}})"
                ))
            })?;
        crate::extract::extract(html)
    } else if trimmed.starts_with('<') {
        crate::extract::extract(&text)
    } else {
        crate::extract::extract_text(&text)
    };
    if json {
        // Written as it is serialised: a huge answer's JSON is never held whole in memory.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, &result)?;
        std::io::Write::write_all(&mut out, b"\n")?;
        std::io::Write::flush(&mut out)?;
    } else {
        print!("{}", crate::extract::render::render(&result));
    }
    Ok(())
}

/// Between passes the daemon idles for minutes or hours: hand the allocator's free memory back
/// to the OS (glibc keeps it otherwise).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the OS; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How often `run` looks for email queued by other processes or due for a retry.
const OUTBOX_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Stops a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub use crate::passlock::AlreadyRunning;

/// Takes the database's pass lock: one `run` or `poll` at a time per database, and only its
/// holder sends the outbox.
fn pass_lock(settings: &Settings) -> anyhow::Result<PassLock> {
    PassLock::acquire(&settings.database.path)
}

/// A warning about `[api] user_agent`, said once by `run` and shown by `status`.
fn user_agent_warning(settings: &Settings) -> Option<String> {
    let ua = &settings.api.user_agent;
    (!ua.contains('@') && !ua.contains("http")).then(|| {
        "[api] user_agent has no contact: Parliament asks API users to give one; put an email address or web page in it".to_owned()
    })
}

/// The database for commands that only read (or change what is there): it must exist already.
fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let path = &settings.database.path;
    if !path.exists() {
        return Err(UsageError(format!(
            "the database {} does not exist ([database] path, from {}); fix: check the path and the config file in use, or create the database with `pqwatch poll --once` (or start the service)",
            path.display(),
            settings.origin("database.path")
        ))
        .into());
    }
    Store::open(path)
}

/// The database for commands that add to it (`run`, `poll`, `subscribe`, `subscribers import`):
/// created, with its folder, if need be.
fn create_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.database.path)
}

fn deps(settings: &Settings, mut store: Store) -> anyhow::Result<Deps> {
    let links = link_signer(&mut store)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let client = Client::new(&settings.api, stop.clone()).context("building the HTTP client")?;
    Ok(Deps {
        client: Arc::new(client),
        store: Arc::new(Mutex::new(store)),
        matcher: Matcher::new(&settings.watch.keywords),
        watch: settings.watch.clone(),
        statements: settings.api.statements,
        concurrency: settings.api.concurrency,
        stop,
        mailer: Arc::new(Mailer::from_settings(&settings.mail)?),
        alerts: AlertSettings::from_mail(&settings.mail, links),
    })
}

async fn poll(settings: Settings, args: PollArgs) -> anyhow::Result<()> {
    if !args.once {
        return Err(UsageError(
            "`pqwatch poll` needs --once (one pass now); use `pqwatch run` to poll on the schedule"
                .into(),
        )
        .into());
    }
    let mode = match (args.from, args.to) {
        (Some(from), Some(to)) if from > to => {
            return Err(UsageError(format!(
                "--from {from} is after --to {to}; give the earlier day first"
            ))
            .into())
        }
        (Some(from), Some(to)) => Mode::Backfill { from, to },
        _ => Mode::Steady,
    };
    let _lock = pass_lock(&settings)?;
    let mut deps = deps(&settings, create_store(&settings)?)?;
    deps.alerts.on_backfill = args.alert;
    let stop = deps.stop.clone();
    let signal = daemon::shutdown_signal();
    let watcher = tokio::spawn(async move {
        signal.await;
        tracing::info!(
            "stopping on a signal: what is stored stays, the rest is read on the next pass"
        );
        stop.cancel();
    });
    let report = pass(&deps, mode).await;
    watcher.abort();
    let report = report?;
    if report.interrupted {
        Err(Interrupted.into())
    } else if report.complete() {
        Ok(())
    } else {
        Err(IncompletePass {
            held: report.held,
            pages: report.pages_failed,
            first: report.errors.first().cloned(),
        }
        .into())
    }
}

/// One pass with its log line and its row in the polls table.
async fn pass(deps: &Deps, mode: Mode) -> anyhow::Result<PassReport> {
    let started = Utc::now();
    let progress = match mode {
        Mode::Backfill { .. } => Progress::for_backfill(),
        Mode::Steady => Progress::quiet(),
    };
    let result = pipeline::run_once(deps, mode, started, &progress).await;
    progress.finish();
    let finished = Utc::now();
    let mode_name = match mode {
        Mode::Steady => "steady".to_owned(),
        Mode::Backfill { from, to } => format!("backfill {from}..{to}"),
    };
    let (ok, json, error) = match &result {
        Ok(r) => (
            r.complete(),
            serde_json::to_string(r)?,
            r.errors.first().cloned(),
        ),
        Err(e) => (false, "{}".to_owned(), Some(format!("{e:#}"))),
    };
    if let Ok(r) = &result {
        tracing::info!(
            mode = %mode_name,
            seen = r.seen,
            matched = r.matched,
            stored = r.stored_new,
            new_versions = r.stored_versions,
            skipped = r.skipped,
            held = r.held,
            quarantined = r.quarantined,
            refused = r.refused,
            figures_new = r.figures_new,
            figures_revised = r.figures_revised,
            alerts_queued = r.alerts_queued,
            alerts_sent = r.alerts_sent,
            alerts_retried = r.alerts_retried,
            alerts_failed = r.alerts_failed,
            pages_failed = r.pages_failed,
            requests = r.requests,
            list_requests = r.list_requests,
            detail_requests = r.detail_requests,
            skipped_by_prefilter = r.skipped_by_prefilter,
            answers_kept = r.answers_kept,
            requests_per_sec = format!("{:.1}", r.requests_per_sec),
            duration_ms = r.duration_ms,
            "poll finished"
        );
    }
    let store = deps.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = store
            .lock()
            .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
        s.record_poll(started, finished, &mode_name, ok, &json, error.as_deref())
    })
    .await??;
    release_free_memory();
    result
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let schedule = Schedule::parse(&settings.schedule.cron.expressions()).map_err(|e| {
        settings.error(
            "schedule.cron",
            e,
            "use sec min hour day-of-month month day-of-week, e.g. \"0 */10 7-22 * * Mon-Fri\"",
        )
    })?;
    let _lock = pass_lock(&settings)?;
    let deps = Arc::new(deps(&settings, create_store(&settings)?)?);
    // Only this process, the holder of the pass lock, sends the outbox. Emails queued by the
    // web front are sent at once; those queued by other commands (`pqwatch subscribe`) and
    // retries whose time has come are found by a look at the outbox every few seconds, not
    // left for the next pass.
    let outbox = Arc::new(tokio::sync::Notify::new());
    let _sender = {
        let (deps, outbox) = (deps.clone(), outbox.clone());
        AbortOnDrop(tokio::spawn(async move {
            loop {
                let woken = tokio::select! {
                    _ = outbox.notified() => true,
                    _ = tokio::time::sleep(OUTBOX_CHECK) => false,
                };
                if !woken {
                    let now = Utc::now();
                    let due = pipeline::with_store(&deps, |s| s.next_due_at())
                        .await
                        .ok()
                        .flatten()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                        .is_some_and(|t| t <= now);
                    if !due {
                        continue;
                    }
                }
                if let Err(e) = pipeline::flush_outbox(&deps, Utc::now()).await {
                    tracing::error!("sending queued email failed: {e:#}");
                }
            }
        }))
    };
    let _web = if settings.web.listen.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&settings.web.listen)
            .await
            .map_err(|e| {
                settings.error(
                    "web.listen",
                    format!("cannot listen on {}: {e}", settings.web.listen),
                    "use a free address and port, e.g. \"127.0.0.1:8080\", or \"\"",
                )
            })?;
        tracing::info!(listen = %settings.web.listen, "serving the web front");
        let web = Arc::new(crate::web::Web {
            reads: crate::store::ReadPool::new(&settings.database.path)?,
            writes: Mutex::new({
                let mut s = open_store(&settings)?;
                s.begin_transactions_immediately();
                s
            }),
            links: deps.alerts.links.clone(),
            alerts: deps.alerts.clone(),
            signups_by_ip: Default::default(),
            settings: settings.web.clone(),
            keywords: settings.watch.keywords.clone(),
            stale_after_minutes: settings.schedule.stale_after_minutes,
            public_base_url: deps.alerts.public_base_url.clone(),
            outbox: outbox.clone(),
        });
        Some(AbortOnDrop(tokio::spawn(crate::web::serve(listener, web))))
    };
    if let Some(w) = user_agent_warning(&settings) {
        tracing::warn!("{w}");
    }
    let signal = daemon::shutdown_signal();
    tracing::info!(database = %settings.database.path.display(), "pqwatch running");
    daemon::sd_notify("READY=1\nSTATUS=polling on schedule");
    daemon::spawn_watchdog();
    let stop = deps.stop.clone();
    let shutdown = async {
        signal.await;
        daemon::sd_notify("STOPPING=1");
    };
    daemon::run(schedule, stop, shutdown, Utc::now, || async {
        if let Err(e) = pass(&deps, Mode::Steady).await {
            tracing::error!("poll failed: {e:#}");
        }
    })
    .await?;
    tracing::info!("pqwatch stopped");
    Ok(())
}

fn answers(settings: Settings, cmd: AnswersCommand) -> anyhow::Result<()> {
    let store = open_store(&settings)?;
    match cmd {
        AnswersCommand::List { since, json } => {
            let rows = store.list_answers(since)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for a in &rows {
                    println!(
                        "{}  {:<8} {:<9} {:>8}  {}",
                        a.date_answered
                            .map_or("????-??-??".into(), |d| d.to_string()),
                        a.house.as_deref().unwrap_or("-"),
                        a.uin.as_deref().unwrap_or("-"),
                        a.id,
                        one_line(a.heading.as_deref().unwrap_or("(no heading)")),
                    );
                }
                eprintln!("{}", plural(rows.len() as u64, "answer", "answers"));
            }
        }
        AnswersCommand::Quarantined { json } => {
            let rows = store.quarantined()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for q in &rows {
                    println!(
                        "{}  {:<9} {:>8}  {:<8} {:<9} {} attempt(s), since {}: {}",
                        q.day.map_or("????-??-??".into(), |d| d.to_string()),
                        q.kind.as_str(),
                        q.id.map_or("-".into(), |i| i.to_string()),
                        q.house.as_deref().unwrap_or("-"),
                        q.uin.as_deref().unwrap_or("-"),
                        q.attempts,
                        q.quarantined_at,
                        one_line(&q.reason),
                    );
                }
                eprintln!("{} quarantined records", rows.len());
            }
        }
        AnswersCommand::Show {
            id,
            statement,
            json,
        } => {
            let kind = if statement {
                DocKind::Statement
            } else {
                DocKind::Question
            };
            let Some(d) = store.answer_detail(kind, id)? else {
                return Err(NotFound(format!(
                    "no stored {} has id {id}; `pqwatch answers list` shows what is stored",
                    kind.as_str()
                ))
                .into());
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                let a = &d.answer;
                println!(
                    "{}",
                    one_line(a.heading.as_deref().unwrap_or("(no heading)"))
                );
                println!(
                    "{} {} · {} · asked by {} · answered by {} on {}",
                    a.house.as_deref().unwrap_or("-"),
                    a.uin.as_deref().unwrap_or("-"),
                    a.answering_body.as_deref().unwrap_or("-"),
                    a.asking_member.as_deref().unwrap_or("-"),
                    a.answering_member.as_deref().unwrap_or("-"),
                    a.date_answered.map_or("-".into(), |d| d.to_string()),
                );
                if let Some(url) = &a.url {
                    println!("{url}");
                }
                if let Some(q) = &d.question_text {
                    println!("\nQ: {}", one_line(q));
                }
                for v in &d.answer_versions {
                    println!(
                        "\n--- version {} (stored {}{}{})",
                        v.version,
                        v.stored_at,
                        if v.is_holding { ", holding answer" } else { "" },
                        if v.is_correction { ", correction" } else { "" },
                    );
                    println!("{}", one_line(&crate::watch::html_text(&v.answer_html)));
                }
            }
        }
    }
    Ok(())
}

/// `status` found pqwatch unhealthy (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("unhealthy: {0}")]
pub struct Unhealthy(pub String);

fn status(settings: Settings, json: bool) -> anyhow::Result<()> {
    let store = open_store(&settings)?;
    let (last, last_ok) = store.last_polls()?;
    let now = Utc::now();
    let schedule = Schedule::parse(&settings.schedule.cron.expressions()).map_err(UsageError)?;
    let next = schedule.next_after(now);
    let (documents, versions, _) = store.counts()?;
    let alerts = store.alert_counts()?;
    let (oldest_pending, mail_error) = store.pending_summary()?;
    let stale = chrono::Duration::minutes(settings.schedule.stale_after_minutes as i64);
    let last_ok_at = last_ok
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let polls_healthy = last_ok_at.is_some_and(|t| now - t <= stale);
    // Alerts waiting longer than [mail] overdue_after_minutes (a mail outage, a relay refusing
    // everything): the people who rely on pqwatch are not hearing from it.
    let overdue_after = settings.mail.overdue_after_minutes;
    let (overdue, oldest_overdue) =
        store.overdue_alerts(now - chrono::Duration::minutes(overdue_after as i64))?;
    let healthy = polls_healthy && overdue == 0;
    let report = serde_json::json!({
        "healthy": healthy,
        "config_file": settings.file().map(|f| f.display().to_string()),
        "warnings": user_agent_warning(&settings).into_iter().collect::<Vec<_>>(),
        "database": settings.database.path.display().to_string(),
        "stale_after_minutes": settings.schedule.stale_after_minutes,
        "last_poll": last.as_ref().map(|(f, m, ok, j, _)| serde_json::json!({
            "finished_at": f, "mode": m, "ok": ok,
            "report": serde_json::from_str::<serde_json::Value>(j).unwrap_or_default(),
        })),
        "last_successful_poll_at": last_ok,
        "next_poll_at": next.map(|t| t.to_rfc3339()),
        "cursor": {
            "question": store.cursor(DocKind::Question)?,
            "statement": store.cursor(DocKind::Statement)?,
        },
        "answers": documents,
        "answer_versions": versions,
        "quarantined": store.quarantined_count()?,
        "statistics": store.statistics_count()?,
        "alerts": {
            "pending": alerts.get("pending").copied().unwrap_or(0),
            "failed": alerts.get("failed").copied().unwrap_or(0),
            "sent": alerts.get("sent").copied().unwrap_or(0),
            "oldest_pending_at": oldest_pending,
            "overdue": overdue,
            "overdue_after_minutes": overdue_after,
            "last_error": mail_error,
        },
        "last_error": last.as_ref().and_then(|(_, _, _, _, e)| e.clone()),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("healthy:       {healthy}");
        println!(
            "config:        {}",
            settings
                .file()
                .map_or("(built-in defaults)".into(), |f| f.display().to_string())
        );
        println!("database:      {}", settings.database.path.display());
        println!(
            "last poll:     {}",
            last.as_ref()
                .map_or("never".into(), |(f, m, ok, _, _)| format!(
                    "{f} ({m}, {})",
                    if *ok { "ok" } else { "incomplete" }
                ))
        );
        println!("last success:  {}", last_ok.as_deref().unwrap_or("never"));
        println!(
            "next poll:     {}",
            next.map_or("-".into(), |t| t
                .with_timezone(&chrono_tz::Europe::London)
                .to_string())
        );
        println!("cursor:        {}", report["cursor"]["question"]);
        println!("answers:       {documents} ({versions} versions)");
        println!(
            "quarantined:   {} records (`pqwatch answers quarantined` lists them)",
            report["quarantined"]
        );
        println!("statistics:    {}", report["statistics"]);
        println!(
            "alerts:        {} pending ({overdue} overdue), {} failed, {} sent",
            report["alerts"]["pending"], report["alerts"]["failed"], report["alerts"]["sent"]
        );
        if let Some(e) = &mail_error {
            println!("mail error:    {e}");
        }
        println!(
            "last error:    {}",
            report["last_error"].as_str().unwrap_or("-")
        );
        if let Some(w) = user_agent_warning(&settings) {
            println!("warning:       {w}");
        }
    }
    if healthy {
        Ok(())
    } else if polls_healthy {
        Err(Unhealthy(format!(
            "{overdue} alert{} waiting longer than [mail] overdue_after_minutes ({overdue_after}), the oldest queued at {}; `pqwatch alerts list --pending` shows why",
            if overdue == 1 { " is" } else { "s are" },
            oldest_overdue.unwrap_or_default()
        ))
        .into())
    } else {
        Err(Unhealthy(match last_ok {
            Some(t) => format!(
                "the last successful poll was at {t}, more than {} minutes ago",
                settings.schedule.stale_after_minutes
            ),
            None => "no successful poll yet".into(),
        })
        .into())
    }
}

fn series(settings: Settings, cmd: SeriesCommand) -> anyhow::Result<()> {
    let store = open_store(&settings)?;
    let detail = |id: i64| -> anyhow::Result<crate::store::SeriesDetail> {
        store.series_detail(id)?.ok_or_else(|| {
            NotFound(format!(
                "no statistic has id {id}; `pqwatch series list` shows them"
            ))
            .into()
        })
    };
    match cmd {
        SeriesCommand::List { json } => {
            let list = store.series_list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for s in &list {
                    println!(
                        "{:>5}  {:<7} {:>10} .. {:<10} {:>3} sources  {}",
                        s.id,
                        s.unit,
                        s.first_period.as_deref().unwrap_or("-"),
                        s.last_period.as_deref().unwrap_or("-"),
                        s.sources,
                        one_line(&s.title)
                    );
                }
                eprintln!("{}", plural(list.len() as u64, "statistic", "statistics"));
            }
        }
        SeriesCommand::Show { id, json } => {
            let d = detail(id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                let s = &d.summary;
                println!(
                    "{} (statistic {}, {}, {})",
                    one_line(&s.title),
                    s.id,
                    s.unit,
                    s.answering_body
                );
                println!("\nsources:");
                for src in &d.sources {
                    println!(
                        "  {} {} answered {} table {}: {}",
                        src.source.house.as_deref().unwrap_or("-"),
                        src.source.uin.as_deref().unwrap_or("-"),
                        src.source
                            .date_answered
                            .map_or("-".into(), |d| d.to_string()),
                        src.source.table_index + 1,
                        src.reason
                    );
                }
                println!("\nvalues:");
                for v in &d.values {
                    println!(
                        "  {:<30} {:<12} {:>12}  {:<9} from {} {} ({})",
                        if v.cell.is_empty() { "(all)" } else { &v.cell },
                        v.period.as_deref().unwrap_or("-"),
                        v.raw,
                        v.change.as_deref().unwrap_or(""),
                        v.source.uin.as_deref().unwrap_or("-"),
                        v.source.date_answered.map_or("-".into(), |d| d.to_string()),
                        v.source.url.as_deref().unwrap_or("-")
                    );
                }
                println!("\nrevisions: {}", d.revisions.len());
                for r in &d.revisions {
                    println!(
                        "  {} {}: {} -> {}",
                        if r.cell.is_empty() { "(all)" } else { &r.cell },
                        r.period.as_deref().unwrap_or("-"),
                        r.previous_raw.as_deref().unwrap_or("-"),
                        r.raw
                    );
                }
            }
        }
        SeriesCommand::Export { id, csv: _ } => {
            let d = detail(id)?;
            print!("{}", crate::export::series_csv(&d));
        }
    }
    Ok(())
}

fn changes(settings: Settings, since: Option<chrono::NaiveDate>, json: bool) -> anyhow::Result<()> {
    let store = open_store(&settings)?;
    let rows = store.changes(since, None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for c in &rows {
            println!(
                "{:<8}{} {} {}: {}{} ({} {} {}, {})",
                c.change,
                if c.is_correction { " (correction)" } else { "" },
                one_line(&c.title),
                match (c.cell.is_empty(), c.measure.is_empty()) {
                    (false, _) => format!("[{}]", c.cell),
                    (true, false) => format!("[{}]", one_line(&c.measure)),
                    (true, true) => String::new(),
                },
                c.period.as_deref().unwrap_or("-"),
                match (&c.previous_raw, c.change.as_str()) {
                    (Some(p), "revised") => format!(" {p} -> {}", c.raw),
                    _ => format!(" = {}", c.raw),
                },
                c.source.house.as_deref().unwrap_or("-"),
                c.source.uin.as_deref().unwrap_or("-"),
                c.source.date_answered.map_or("-".into(), |d| d.to_string()),
                c.source.url.as_deref().unwrap_or("-"),
            );
        }
        eprintln!("{}", plural(rows.len() as u64, "change", "changes"));
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
