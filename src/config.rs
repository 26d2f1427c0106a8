//! The typed settings, loaded once from one TOML file plus `PQWATCH_*` environment overrides.
//!
//! It validates every value at load time and names the key, the file and the fix when one is wrong.
//! It opens no connections and builds no clients: each stage is handed its own section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything in `config/pqwatch.toml`. Every key is optional: the shipped file, built in as
/// [`DEFAULTS`], gives each one its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub api: ApiSettings,
    pub watch: WatchSettings,
    pub database: DatabaseSettings,
    pub schedule: ScheduleSettings,
    pub mail: MailSettings,
    pub web: WebSettings,
    /// The file these came from; `None` for the built-in defaults alone.
    #[serde(skip)]
    file: Option<PathBuf>,
    /// Where each key that did not keep its default came from, for later errors.
    #[serde(skip)]
    origins: Origins,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// Where `pqwatch run` serves the web front (pages, sign-up, the links in emails), e.g.
    /// "127.0.0.1:8080" behind a reverse proxy at [mail] public_base_url. Empty: not served.
    pub listen: String,
    /// A client must send a request's headers within this many seconds of connecting.
    pub header_read_timeout_secs: u64,
    /// A connection with no traffic for this many seconds is closed.
    pub idle_timeout_secs: u64,
    /// A request not answered within this many seconds gets 408.
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// The largest request body (a form) taken, in bytes.
    pub max_body_bytes: usize,
    /// Sign-ups never confirmed are deleted after this many days.
    pub prune_unconfirmed_days: u32,
    /// Sign-ups one IP address may make in an hour.
    pub signups_per_ip_per_hour: u32,
    /// Sign-ups (confirmation emails) for one address in a day.
    pub signups_per_address_per_day: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub base_url: String,
    pub user_agent: String,
    pub page_size: u32,
    pub max_rps: f64,
    pub timeout_secs: u64,
    pub max_retries: u32,
    pub retry_base_ms: u64,
    pub concurrency: usize,
    pub statements: bool,
    /// The most bytes one response body may have (counted as it streams in, after gzip): a
    /// larger one is refused, and the record it was for is quarantined.
    pub max_body_bytes: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSettings {
    pub keywords: Vec<String>,
    pub answering_bodies: Vec<i64>,
    pub houses: Vec<String>,
    pub first_poll_days: u32,
    pub overlap_days: u32,
    /// Answering bodies whose answers are always read in full (their detail fetched), since a
    /// figure can sit deep in any of them. Others are read only when a keyword shows in the list
    /// record (heading, question, or the shortened start of the answer).
    #[serde(default = "default_deep_read_bodies")]
    pub deep_read_bodies: Vec<i64>,
    /// Read every listed answer in full, whatever its body (the slow, exhaustive way).
    #[serde(default)]
    pub read_every_answer: bool,
    /// The most bytes of HTML one answer (or statement) may have to be matched, stored and
    /// extracted: a larger one is refused and quarantined.
    pub max_answer_bytes: u64,
    /// Passes a record that cannot be read is held for (the cursor kept before it) before it
    /// is quarantined and the cursor moves on.
    pub quarantine_after: u32,
}

/// The Ministry of Justice (answering body 54).
fn default_deep_read_bodies() -> Vec<i64> {
    vec![54]
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub path: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// One cron expression or several; a poll runs at each fire time of any of them.
    pub cron: CronSpec,
    /// `pqwatch status` exits 1 when the last successful poll is older than this.
    pub stale_after_minutes: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum CronSpec {
    One(String),
    Many(Vec<String>),
}

impl CronSpec {
    pub fn expressions(&self) -> Vec<&str> {
        match self {
            CronSpec::One(s) => vec![s.as_str()],
            CronSpec::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// The From mailbox of every alert.
    pub from: String,
    /// `smtp://host:port` (STARTTLS), `smtps://host:port` (implicit TLS), or
    /// `smtp+plain://host:port` (no TLS: loopback only). Empty: write .eml files to `outbox_dir`.
    pub smtp_url: String,
    pub smtp_username: String,
    /// The SMTP password: better from PQWATCH_MAIL_SMTP_PASSWORD or a credentials file.
    pub smtp_password: String,
    pub smtp_password_file: String,
    /// A PEM certificate to trust for the SMTP server besides the public roots (a private CA).
    pub tls_ca_file: String,
    pub outbox_dir: PathBuf,
    /// Where one-click unsubscribe links point (`{base}/unsubscribe?t=TOKEN.SIGNATURE`);
    /// empty: mailto only.
    pub public_base_url: String,
    /// The mailbox that takes `mailto:` unsubscribe requests.
    pub unsubscribe_mailto: String,
    /// UK hour (0-23) at which daily digests are sent.
    pub digest_hour: u32,
    /// A further limit on temporary failures of one message; `give_up_after_hours` normally
    /// decides first.
    pub max_attempts: u32,
    pub retry_base_secs: u64,
    /// A message that keeps failing temporarily (4xx, dropped connections, a relay that is
    /// down) is retried, with back-off capped at an hour, for this long after it was queued.
    pub give_up_after_hours: u64,
    /// `pqwatch status` is unhealthy while an alert has been pending longer than this.
    pub overdue_after_minutes: u64,
    /// Permanent failures (5xx) in a row for one address before its subscriber is suspended.
    pub suspend_after_bounces: u32,
    /// Days a confirm link works.
    pub confirm_link_days: u32,
    /// The longest one SMTP step (connect, TLS, AUTH, one message) may take, in seconds.
    #[serde(default = "default_smtp_timeout_secs")]
    pub smtp_timeout_secs: u64,
    /// The config file's folder, where a relative `smtp_password_file` is found outside systemd.
    #[serde(skip)]
    pub smtp_password_dir: Option<PathBuf>,
}

fn default_smtp_timeout_secs() -> u64 {
    60
}

impl MailSettings {
    /// The SMTP password from the setting, or else from the credentials file. A relative file
    /// name is looked up in $CREDENTIALS_DIRECTORY (systemd's LoadCredential=) when it is there,
    /// else beside the config file, so the service and an administrator's shell read one file.
    /// An empty file means no password.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        if !self.smtp_password.is_empty() {
            return Ok(Some(self.smtp_password.clone()));
        }
        if self.smtp_password_file.is_empty() {
            return Ok(None);
        }
        let name = Path::new(&self.smtp_password_file);
        let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|dir| PathBuf::from(dir).join(name))
            .filter(|p| name.is_relative() && p.exists());
        let path = match (credential, &self.smtp_password_dir) {
            (Some(p), _) => p,
            (None, Some(dir)) => dir.join(name),
            (None, None) => name.to_owned(),
        };
        std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned()).filter(|s| !s.is_empty()))
            .map_err(|e| ConfigError::Setting {
                key: "mail.smtp_password_file".into(),
                origin: "the config".into(),
                message: format!("cannot read {}: {e}", path.display()),
                fix: "point it at a readable file holding only the password".into(),
            })
    }
}

/// A setting that is wrong or missing: always says which, where, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {cause}; fix: pass an existing file with --config FILE or PQWATCH_CONFIG=FILE (without either, pqwatch reads /etc/pqwatch/pqwatch.toml if it exists, else uses the built-in defaults)")]
    Read {
        file: PathBuf,
        /// Printed in the message, and not a `source` too, so the cause chain says it once.
        cause: std::io::Error,
    },
    #[error("config file {file}: {message}; fix: {fix}")]
    Invalid {
        file: PathBuf,
        message: String,
        fix: String,
    },
    /// One key's value is wrong; `origin` says where that value came from.
    #[error("setting [{key}] (from {origin}): {message}; fix: {fix}")]
    Setting {
        key: String,
        origin: String,
        message: String,
        fix: String,
    },
    #[error("environment variable {var}: {message}; fix: {fix}")]
    Env {
        var: String,
        message: String,
        fix: String,
    },
}

/// The shipped `config/pqwatch.toml`, built in: every key's default comes from it, so a config
/// file need only hold what it changes.
pub const DEFAULTS: &str = include_str!("../config/pqwatch.toml");

/// The packaged config, read when neither `--config` nor `PQWATCH_CONFIG` names a file.
pub const SYSTEM_CONFIG: &str = "/etc/pqwatch/pqwatch.toml";

const SECTIONS: &[&str] = &["api", "watch", "database", "schedule", "mail", "web"];
/// Environment variables with the prefix that are not setting overrides.
const NOT_OVERRIDES: &[&str] = &["PQWATCH_CONFIG", "PQWATCH_LOG"];

/// Where one setting's value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// The config file to read: `--config` (or `PQWATCH_CONFIG`, which clap folds into the flag),
/// else [`SYSTEM_CONFIG`] if it exists, else none (the built-in defaults).
pub fn locate(flag: Option<&Path>) -> Option<PathBuf> {
    match flag {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(SYSTEM_CONFIG)).filter(|p| p.exists()),
    }
}

impl Settings {
    /// Reads `file`, applies `PQWATCH_<SECTION>_<KEY>` overrides from `env`, and validates.
    pub fn load(
        file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|cause| ConfigError::Read {
            file: file.to_owned(),
            cause,
        })?;
        // Absolute, so that paths resolved against its folder read well in every message.
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        Settings::from_toml(&file, &text, env)
    }

    /// The settings of the file found by [`locate`], or of the built-in defaults when none is.
    pub fn discover(
        flag: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        match locate(flag) {
            Some(file) => Settings::load(&file, env),
            None => Settings::from_parts(None, None, env),
        }
    }

    /// `text` is the content of `file`; keys it leaves out take the shipped defaults.
    pub fn from_toml(
        file: &Path,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        Settings::from_parts(Some(file), Some(text), env)
    }

    fn from_parts(
        file: Option<&Path>,
        text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut table: toml::Table = DEFAULTS.parse().expect("the built-in defaults are TOML");
        let mut origins = Origins::default();
        if let (Some(file), Some(text)) = (file, text) {
            let given: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Invalid {
                        file: file.to_owned(),
                        message: one_line(&e.to_string()),
                        fix: "correct the TOML syntax at the place named".into(),
                    })?;
            overlay(&mut table, given, file, &mut origins)?;
        }
        apply_env(&mut table, env, &mut origins)?;
        let mut settings: Settings = table.try_into().map_err(|e: toml::de::Error| {
            let message = one_line(&e.to_string());
            let fix = if message.contains("unknown field") {
                "remove or rename the key; the valid keys are listed in the message"
            } else {
                "give the key a value of the type the shipped config/pqwatch.toml shows"
            };
            origins.blame(&message, fix)
        })?;
        settings.file = file.map(Path::to_owned);
        settings.resolve_paths(file, &origins);
        settings.validate(&origins)?;
        settings.origins = origins;
        Ok(settings)
    }

    /// Relative paths from a config file are relative to that file's folder; from the
    /// environment or the built-in defaults, to the working directory.
    fn resolve_paths(&mut self, file: Option<&Path>, origins: &Origins) {
        let Some(dir) = file.and_then(Path::parent) else {
            return;
        };
        let from_file = |key: &str| matches!(origins.get(key), Origin::File(_));
        let resolve = |p: &Path| -> Option<PathBuf> {
            (!p.as_os_str().is_empty() && p.is_relative()).then(|| dir.join(p))
        };
        if from_file("database.path") {
            if let Some(p) = resolve(&self.database.path) {
                self.database.path = p;
            }
        }
        if from_file("mail.outbox_dir") {
            if let Some(p) = resolve(&self.mail.outbox_dir) {
                self.mail.outbox_dir = p;
            }
        }
        if from_file("mail.tls_ca_file") {
            if let Some(p) = resolve(Path::new(&self.mail.tls_ca_file)) {
                self.mail.tls_ca_file = p.display().to_string();
            }
        }
        if from_file("mail.smtp_password_file") {
            // Looked up in $CREDENTIALS_DIRECTORY first (systemd's LoadCredential=), then here.
            self.mail.smtp_password_dir = Some(dir.to_owned());
        }
    }

    /// The file these settings were read from; `None` for the built-in defaults.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Where the value of `key` (`section.key`) came from: the file, the environment, or the
    /// built-in default.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key)
    }

    /// An error about `key` (`section.key`) found after loading (a port in use, a cron with no
    /// future time), blaming the place its value came from.
    pub fn error(&self, key: &str, message: String, fix: &str) -> ConfigError {
        self.origins.error(key, message, fix)
    }

    fn validate(&self, origins: &Origins) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String, fix: &str| Err(origins.error(key, message, fix));
        let api = &self.api;
        match reqwest::Url::parse(&api.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return bad(
                    "api.base_url",
                    format!("{:?} is not an http(s) URL", api.base_url),
                    "set it to https://questions-statements-api.parliament.uk",
                )
            }
        }
        if api.user_agent.trim().is_empty() || api.user_agent.contains(['\r', '\n']) {
            return bad(
                "api.user_agent",
                "is empty or has a line break".into(),
                "set it to a one-line name with a contact, e.g. \"pqwatch/0.1 (ops@your-union.org.uk)\"",
            );
        }
        if !(1..=1000).contains(&api.page_size) {
            return bad(
                "api.page_size",
                format!("{} is out of range", api.page_size),
                "use a number from 1 to 1000 (100 is polite and efficient)",
            );
        }
        if !(api.max_rps.is_finite() && (0.01..=1000.0).contains(&api.max_rps)) {
            return bad(
                "api.max_rps",
                format!("{:?} is out of range", api.max_rps),
                "use a number from 0.01 to 1000: requests per second (5 is polite)",
            );
        }
        in_range(
            origins,
            "api.timeout_secs",
            api.timeout_secs,
            1..=3600,
            "seconds per request (30 suits the API)",
        )?;
        in_range(
            origins,
            "api.max_retries",
            api.max_retries.into(),
            0..=100,
            "retries of one request (5 rides out a short outage)",
        )?;
        in_range(
            origins,
            "api.retry_base_ms",
            api.retry_base_ms,
            1..=600_000,
            "milliseconds before the first retry (1000 is polite)",
        )?;
        in_range(
            origins,
            "api.max_body_bytes",
            api.max_body_bytes,
            100_000..=1_000_000_000,
            "bytes one response body may have (8000000 is many times the largest real answer)",
        )?;
        let watch = &self.watch;
        in_range(
            origins,
            "watch.max_answer_bytes",
            watch.max_answer_bytes,
            1_000..=api.max_body_bytes,
            "bytes of HTML one answer may have, at most [api] max_body_bytes (1000000 is many times the largest real answer)",
        )?;
        in_range(
            origins,
            "watch.quarantine_after",
            watch.quarantine_after.into(),
            1..=100,
            "passes an unreadable record is held before it is quarantined (3 rides out a passing glitch)",
        )?;
        if watch.keywords.iter().all(|k| k.trim().is_empty()) {
            return bad(
                "watch.keywords",
                "is empty".into(),
                "list the words and phrases to watch, e.g. [\"prison\", \"probation\"]",
            );
        }
        in_range(
            origins,
            "watch.first_poll_days",
            watch.first_poll_days.into(),
            0..=36_500,
            "days the very first poll looks back (7 is the default; use `poll --once --from` for history)",
        )?;
        in_range(
            origins,
            "watch.overlap_days",
            watch.overlap_days.into(),
            0..=365,
            "days each poll re-reads before the last day fully seen (1 is the default)",
        )?;
        for house in &watch.houses {
            if !matches!(house.as_str(), "Commons" | "Lords" | "Bicameral") {
                return bad(
                    "watch.houses",
                    format!("{house:?} is not a house"),
                    "use \"Commons\", \"Lords\" or \"Bicameral\", or [] for all",
                );
            }
        }
        if self.database.path.as_os_str().is_empty() {
            return bad(
                "database.path",
                "is empty".into(),
                "set it to a file path, e.g. \"data/pqwatch.sqlite\"",
            );
        }
        let mail = &self.mail;
        if mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return bad(
                "mail.from",
                format!("{:?} is not a mailbox", mail.from),
                "use \"pqwatch <alerts@your-union.org.uk>\" or a bare address",
            );
        }
        if !mail.smtp_url.is_empty()
            && !["smtp://", "smtps://", "smtp+plain://"]
                .iter()
                .any(|p| mail.smtp_url.starts_with(p))
        {
            return bad(
                "mail.smtp_url",
                format!("{:?} is not an SMTP URL", mail.smtp_url),
                "use smtp://host:587 (STARTTLS), smtps://host:465 (TLS), or \"\" to write .eml files",
            );
        }
        if !mail.unsubscribe_mailto.is_empty()
            && mail.unsubscribe_mailto.parse::<lettre::Address>().is_err()
        {
            return bad(
                "mail.unsubscribe_mailto",
                format!("{:?} is not an email address", mail.unsubscribe_mailto),
                "use an address that takes unsubscribe requests, or \"\" to use the From address",
            );
        }
        if !(1..=3600).contains(&mail.smtp_timeout_secs) {
            return bad(
                "mail.smtp_timeout_secs",
                format!("{} is out of range", mail.smtp_timeout_secs),
                "use a number of seconds from 1 to 3600 (60 suits most relays)",
            );
        }
        in_range(
            origins,
            "mail.digest_hour",
            mail.digest_hour.into(),
            0..=23,
            "the UK hour daily digests are sent (7 is the default)",
        )?;
        in_range(
            origins,
            "mail.max_attempts",
            mail.max_attempts.into(),
            1..=1000,
            "attempts per message before it is marked failed (8 is the default)",
        )?;
        in_range(
            origins,
            "mail.retry_base_secs",
            mail.retry_base_secs,
            0..=86_400,
            "seconds before the first retry of a message (60 is the default; 0 retries at once)",
        )?;
        in_range(
            origins,
            "mail.give_up_after_hours",
            mail.give_up_after_hours,
            1..=24 * 60,
            "hours a temporarily failing message is retried (120, five days, is the default)",
        )?;
        in_range(
            origins,
            "mail.overdue_after_minutes",
            mail.overdue_after_minutes,
            1..=60 * 24 * 60,
            "minutes an alert may wait before status is unhealthy (60 is the default)",
        )?;
        in_range(
            origins,
            "mail.suspend_after_bounces",
            mail.suspend_after_bounces.into(),
            1..=1000,
            "permanent failures in a row before a subscriber is suspended (3 is the default)",
        )?;
        in_range(
            origins,
            "mail.confirm_link_days",
            mail.confirm_link_days.into(),
            1..=365,
            "days a confirm link works (7 is the default)",
        )?;
        let web = &self.web;
        for (key, value, range, what) in [
            (
                "web.header_read_timeout_secs",
                web.header_read_timeout_secs,
                1..=3600,
                "seconds a client has to send its request headers (10 is the default)",
            ),
            (
                "web.idle_timeout_secs",
                web.idle_timeout_secs,
                1..=86_400,
                "seconds an idle connection is kept (30 is the default)",
            ),
            (
                "web.request_timeout_secs",
                web.request_timeout_secs,
                1..=3600,
                "seconds a request may take (15 is the default)",
            ),
            (
                "web.max_connections",
                web.max_connections as u64,
                1..=1_000_000,
                "connections served at once (4096 is the default)",
            ),
            (
                "web.max_body_bytes",
                web.max_body_bytes as u64,
                1024..=10 << 20,
                "the largest request body in bytes (16384 is the default)",
            ),
            (
                "web.prune_unconfirmed_days",
                web.prune_unconfirmed_days.into(),
                1..=3650,
                "days an unconfirmed sign-up is kept (7 is the default)",
            ),
            (
                "web.signups_per_ip_per_hour",
                web.signups_per_ip_per_hour.into(),
                1..=1_000_000,
                "sign-ups per IP address per hour (10 is the default)",
            ),
            (
                "web.signups_per_address_per_day",
                web.signups_per_address_per_day.into(),
                1..=1000,
                "confirmation emails per address per day (3 is the default)",
            ),
        ] {
            in_range(origins, key, value, range, what)?;
        }
        in_range(
            origins,
            "schedule.stale_after_minutes",
            self.schedule.stale_after_minutes,
            0..=5_256_000,
            "minutes without a successful poll before `status` says unhealthy (180 is the default)",
        )?;
        let exprs = self.schedule.cron.expressions();
        if exprs.is_empty() {
            return bad(
                "schedule.cron",
                "is empty".into(),
                "give at least one expression, e.g. \"0 */10 7-22 * * Mon-Fri\"",
            );
        }
        let now = chrono::Utc::now();
        for e in exprs {
            let fires = match crate::daemon::Schedule::parse(&[e]) {
                Ok(s) => s.next_after(now).is_some(),
                Err(err) => {
                    return bad(
                        "schedule.cron",
                        err,
                        "use sec min hour day-of-month month day-of-week, e.g. \"0 */10 7-22 * * Mon-Fri\"",
                    )
                }
            };
            if !fires {
                return bad(
                    "schedule.cron",
                    format!(
                        "{e:?} never fires again (a date that does not exist, or a year gone by)"
                    ),
                    "give an expression with future fire times, e.g. \"0 */10 7-22 * * Mon-Fri\"",
                );
            }
        }
        Ok(())
    }
}

/// A number setting outside `range`: named with where it came from and the range allowed.
fn in_range(
    origins: &Origins,
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    what: &str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(origins.error(
        key,
        format!("{value} is out of range"),
        &format!(
            "use a number from {} to {}: {what}",
            range.start(),
            range.end()
        ),
    ))
}

/// Where each `section.key` that did not keep its default came from.
#[derive(Clone, Debug, Default)]
struct Origins(std::collections::HashMap<String, Origin>);

impl Origins {
    fn get(&self, key: &str) -> Origin {
        self.0.get(key).cloned().unwrap_or(Origin::Default)
    }

    fn error(&self, key: &str, message: String, fix: &str) -> ConfigError {
        if let Origin::Env(var) = self.get(key) {
            return ConfigError::Env {
                var,
                message: format!("[{key}] {message}"),
                fix: fix.to_owned(),
            };
        }
        ConfigError::Setting {
            key: key.to_owned(),
            origin: self.get(key).to_string(),
            message,
            fix: fix.to_owned(),
        }
    }

    /// A deserialisation error: the key it names (`section.key` or a bare field) is looked up.
    fn blame(&self, message: &str, fix: &str) -> ConfigError {
        let named: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
        let key = self
            .0
            .keys()
            .find(|k| {
                named.iter().any(|n| {
                    k.as_str() == *n || k.rsplit_once('.').is_some_and(|(_, field)| field == *n)
                })
            })
            .cloned();
        match key {
            Some(k) => {
                let origin = self.get(&k);
                match origin {
                    Origin::Env(var) => ConfigError::Env {
                        var,
                        message: message.to_owned(),
                        fix: fix.to_owned(),
                    },
                    _ => ConfigError::Setting {
                        key: k,
                        origin: origin.to_string(),
                        message: message.to_owned(),
                        fix: fix.to_owned(),
                    },
                }
            }
            None => ConfigError::Setting {
                key: "?".into(),
                origin: "the config".into(),
                message: message.to_owned(),
                fix: fix.to_owned(),
            },
        }
    }
}

/// Lays the file's keys over the defaults, section by section, noting where each came from.
fn overlay(
    table: &mut toml::Table,
    given: toml::Table,
    file: &Path,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    for (section, value) in given {
        let toml::Value::Table(keys) = value else {
            return Err(ConfigError::Invalid {
                file: file.to_owned(),
                message: format!("`{section}` is a key outside any [section]"),
                fix: format!("put each key under its section ({})", SECTIONS.join(", ")),
            });
        };
        let target = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = target {
            for (key, v) in keys {
                origins
                    .0
                    .insert(format!("{section}.{key}"), Origin::File(file.to_owned()));
                t.insert(key, v);
            }
        }
    }
    Ok(())
}

/// Applies `PQWATCH_API_BASE_URL=...`-style overrides: section, then key. Values are read as
/// TOML where they parse (numbers, booleans, `["a", "b"]`) and as strings otherwise; a key
/// whose default is a list also takes a comma-separated list (`PQWATCH_WATCH_HOUSES=Commons,Lords`).
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix("PQWATCH_") else {
            continue;
        };
        if NOT_OVERRIDES.contains(&var.as_str()) {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let Some((section, key)) = SECTIONS.iter().find_map(|s| {
            lower
                .strip_prefix(s)
                .and_then(|k| k.strip_prefix('_'))
                .map(|k| (*s, k.to_owned()))
        }) else {
            return Err(ConfigError::Env {
                var,
                message: "names no setting".into(),
                fix: format!(
                    "use PQWATCH_<SECTION>_<KEY> with a section of {}, or unset it",
                    SECTIONS.join(", ")
                ),
            });
        };
        let entry = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(t) = entry else {
            continue;
        };
        // Cron expressions hold commas of their own: one expression per variable.
        let is_list = matches!(t.get(&key), Some(toml::Value::Array(_))) && key != "cron";
        let parse = |s: &str| {
            format!("v = {s}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
        };
        let value = match parse(&raw) {
            Some(v) if !is_list || v.is_array() => v,
            _ if is_list => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| parse(s).unwrap_or_else(|| toml::Value::String(s.to_owned())))
                    .collect(),
            ),
            _ => toml::Value::String(raw),
        };
        origins
            .0
            .insert(format!("{section}.{key}"), Origin::Env(var));
        t.insert(key, value);
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/pqwatch.toml"))
            .unwrap()
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::from_toml(Path::new("pqwatch.toml"), text, env)
    }

    #[test]
    fn the_shipped_config_loads_and_points_at_the_real_service() {
        let s = load(&shipped(), &[]).unwrap();
        assert_eq!(
            s.api.base_url,
            "https://questions-statements-api.parliament.uk"
        );
        for word in [
            "prison",
            "probation",
            "HMPPS",
            "YOI",
            "parole",
            "licence recall",
        ] {
            assert!(s.watch.keywords.iter().any(|k| k == word), "{word}");
        }
    }

    #[test]
    fn environment_variables_override_the_file_with_typed_values() {
        let s = load(
            &shipped(),
            &[
                ("PQWATCH_API_BASE_URL", "http://127.0.0.1:9"),
                ("PQWATCH_API_PAGE_SIZE", "7"),
                ("PQWATCH_DATABASE_PATH", "/tmp/x.sqlite"),
            ],
        )
        .unwrap();
        assert_eq!(s.api.base_url, "http://127.0.0.1:9");
        assert_eq!(s.api.page_size, 7);
        assert_eq!(s.database.path, PathBuf::from("/tmp/x.sqlite"));
    }

    #[test]
    fn a_misspelt_key_is_named_with_the_file_and_a_fix() {
        let text = shipped().replace("page_size", "pag_size");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("pqwatch.toml"), "{msg}");
        assert!(msg.contains("pag_size"), "{msg}");
        assert!(msg.contains("fix:"), "{msg}");
    }

    #[test]
    fn an_out_of_range_value_is_named_with_its_key() {
        let text = shipped().replace("page_size = 100", "page_size = 0");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("[api.page_size]"), "{msg}");
        let msg = load(&shipped(), &[("PQWATCH_API_BASE_URL", "ftp:nowhere")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[api.base_url]"), "{msg}");
    }

    #[test]
    fn the_caps_and_quarantine_after_have_defaults_and_ranges_named_by_key() {
        let s = load(&shipped(), &[]).unwrap();
        assert_eq!(s.api.max_body_bytes, 8_000_000);
        assert_eq!(s.watch.max_answer_bytes, 1_000_000);
        assert_eq!(s.watch.quarantine_after, 3);
        for (var, value, key) in [
            ("PQWATCH_API_MAX_BODY_BYTES", "10", "[api.max_body_bytes]"),
            (
                "PQWATCH_WATCH_MAX_ANSWER_BYTES",
                "9000000",
                "[watch.max_answer_bytes]",
            ),
            (
                "PQWATCH_WATCH_QUARANTINE_AFTER",
                "0",
                "[watch.quarantine_after]",
            ),
        ] {
            let msg = load(&shipped(), &[(var, value)]).unwrap_err().to_string();
            assert!(msg.contains(key) && msg.contains("fix:"), "{msg}");
        }
        let s = load(&shipped(), &[("PQWATCH_WATCH_QUARANTINE_AFTER", "1")]).unwrap();
        assert_eq!(s.watch.quarantine_after, 1);
    }

    #[test]
    fn the_smtp_password_comes_from_the_setting_or_a_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let s = load(
            &shipped(),
            &[("PQWATCH_MAIL_SMTP_PASSWORD_FILE", file.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(s.mail.password().unwrap().as_deref(), Some("s3cret"));
        let s = load(&shipped(), &[("PQWATCH_MAIL_SMTP_PASSWORD", "direct")]).unwrap();
        assert_eq!(s.mail.password().unwrap().as_deref(), Some("direct"));
        let s = load(&shipped(), &[]).unwrap();
        assert_eq!(s.mail.password().unwrap(), None);
        let s = load(
            &shipped(),
            &[("PQWATCH_MAIL_SMTP_PASSWORD_FILE", "/nonexistent/pw")],
        )
        .unwrap();
        let e = s.mail.password().unwrap_err().to_string();
        assert!(
            e.contains("smtp_password_file") && e.contains("/nonexistent/pw"),
            "{e}"
        );
    }

    #[test]
    fn a_file_with_one_key_keeps_every_other_default() {
        let s = load("[api]\nuser_agent = \"pqwatch (ops@union.org.uk)\"\n", &[]).unwrap();
        let d = load(&shipped(), &[]).unwrap();
        assert_eq!(s.api.user_agent, "pqwatch (ops@union.org.uk)");
        assert_eq!(s.api.page_size, d.api.page_size);
        assert_eq!(s.watch.keywords, d.watch.keywords);
        assert_eq!(s.mail.smtp_timeout_secs, 60);
        let empty = load("", &[]).unwrap();
        assert_eq!(format!("{:?}", empty.schedule), format!("{:?}", d.schedule));
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_its_folder_and_in_the_environment_to_the_working_directory(
    ) {
        let text = "[database]\npath = \"state/db.sqlite\"\n[mail]\noutbox_dir = \"/abs/outbox\"\n";
        let s = Settings::from_toml(Path::new("/etc/pqwatch/pqwatch.toml"), text, []).unwrap();
        assert_eq!(s.database.path, Path::new("/etc/pqwatch/state/db.sqlite"));
        assert_eq!(s.mail.outbox_dir, Path::new("/abs/outbox"));
        let env = [("PQWATCH_DATABASE_PATH".to_owned(), "rel.sqlite".to_owned())];
        let s = Settings::from_toml(Path::new("/etc/pqwatch/pqwatch.toml"), text, env).unwrap();
        assert_eq!(s.database.path, Path::new("rel.sqlite"));
    }

    #[test]
    fn a_relative_password_file_is_read_beside_the_config_file_outside_systemd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp-password"), "beside\n").unwrap();
        let file = dir.path().join("pqwatch.toml");
        let text = "[mail]\nsmtp_password_file = \"smtp-password\"\n";
        let s = Settings::from_toml(&file, text, []).unwrap();
        assert_eq!(s.mail.password().unwrap().as_deref(), Some("beside"));
        std::fs::write(dir.path().join("smtp-password"), "").unwrap();
        assert_eq!(
            s.mail.password().unwrap(),
            None,
            "an empty file is no password"
        );
    }

    #[test]
    fn an_error_in_an_environment_override_names_the_variable_not_the_file() {
        let msg = load(&shipped(), &[("PQWATCH_API_PAGE_SIZE", "0")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("PQWATCH_API_PAGE_SIZE"), "{msg}");
        assert!(!msg.contains("pqwatch.toml"), "{msg}");
        let msg = load(&shipped(), &[("PQWATCH_API_PAGE_SIZE", "many")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("PQWATCH_API_PAGE_SIZE"), "{msg}");
        let msg = load("[api]\npage_size = \"many\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("pqwatch.toml") && msg.contains("page_size"),
            "{msg}"
        );
    }

    #[test]
    fn list_settings_take_a_comma_separated_list_or_toml_from_the_environment() {
        let s = load(
            &shipped(),
            &[
                ("PQWATCH_WATCH_HOUSES", "Commons, Lords"),
                ("PQWATCH_WATCH_ANSWERING_BODIES", "54,1"),
                (
                    "PQWATCH_WATCH_KEYWORDS",
                    "[\"drones\", \"parole, licence\"]",
                ),
                ("PQWATCH_SCHEDULE_CRON", "0 0 7,19 * * *"),
            ],
        )
        .unwrap();
        assert_eq!(s.watch.houses, ["Commons", "Lords"]);
        assert_eq!(s.watch.answering_bodies, [54, 1]);
        assert_eq!(s.watch.keywords, ["drones", "parole, licence"]);
        assert_eq!(s.schedule.cron.expressions(), ["0 0 7,19 * * *"]);
    }

    #[test]
    fn values_that_would_overflow_later_are_refused_with_their_range() {
        for (key, value) in [
            ("schedule", "stale_after_minutes = 9223372036854775807"),
            ("api", "max_rps = 1e-300"),
            ("api", "max_rps = 1e300"),
            ("watch", "first_poll_days = 4000000000"),
            ("watch", "overlap_days = 4000000000"),
            ("api", "timeout_secs = 9223372036854775807"),
            ("api", "retry_base_ms = 9223372036854775807"),
            ("mail", "retry_base_secs = 9223372036854775807"),
            ("mail", "max_attempts = 0"),
        ] {
            let msg = load(&format!("[{key}]\n{value}\n"), &[])
                .unwrap_err()
                .to_string();
            let name = value.split(' ').next().unwrap();
            assert!(
                msg.contains(&format!("[{key}.{name}]")) && msg.contains("out of range"),
                "{msg}"
            );
            assert!(msg.contains("fix: use a number from"), "{msg}");
        }
    }

    #[test]
    fn a_cron_expression_that_never_fires_is_a_config_error() {
        for e in ["0 0 0 30 2 *", "0 0 0 1 1 * 2001"] {
            let msg = load(&format!("[schedule]\ncron = [\"{e}\"]\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(msg.contains("never fires"), "{msg}");
        }
    }

    #[test]
    fn an_environment_variable_for_no_section_is_refused_by_name() {
        let msg = load(&shipped(), &[("PQWATCH_NOPE_X", "1")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("PQWATCH_NOPE_X"), "{msg}");
    }
}
