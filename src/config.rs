//! The typed settings, loaded once from one TOML file plus `PQWATCH_*` environment overrides.
//!
//! It validates every value at load time and names the key, the file and the fix when one is wrong.
//! It opens no connections and builds no clients: each stage is handed its own section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything in `config/pqwatch.toml`. No `Default`: the shipped file holds the defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub api: ApiSettings,
    pub watch: WatchSettings,
    pub database: DatabaseSettings,
    pub schedule: ScheduleSettings,
    pub mail: MailSettings,
    pub web: WebSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// Where `pqwatch run` serves the unsubscribe and confirm links, e.g. "127.0.0.1:8080"
    /// behind a reverse proxy at [mail] public_base_url. Empty: not served.
    pub listen: String,
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
    pub max_attempts: u32,
    pub retry_base_secs: u64,
    /// The longest one SMTP step (connect, TLS, AUTH, one message) may take, in seconds.
    #[serde(default = "default_smtp_timeout_secs")]
    pub smtp_timeout_secs: u64,
}

fn default_smtp_timeout_secs() -> u64 {
    60
}

impl MailSettings {
    /// The SMTP password from the setting, or else from the credentials file (systemd's
    /// LoadCredential puts it under $CREDENTIALS_DIRECTORY).
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        if !self.smtp_password.is_empty() {
            return Ok(Some(self.smtp_password.clone()));
        }
        if self.smtp_password_file.is_empty() {
            return Ok(None);
        }
        let path = match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) if !self.smtp_password_file.starts_with('/') => {
                PathBuf::from(dir).join(&self.smtp_password_file)
            }
            _ => PathBuf::from(&self.smtp_password_file),
        };
        std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| ConfigError::Env {
                var: "[mail] smtp_password_file".into(),
                message: format!("cannot read {}: {e}", path.display()),
                fix: "point it at a readable file holding only the password".into(),
            })
    }
}

/// A setting that is wrong or missing: always says which, where, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {source}; fix: pass an existing file with --config FILE (the shipped one is config/pqwatch.toml)")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {file}: {message}; fix: {fix}")]
    Invalid {
        file: PathBuf,
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

const SECTIONS: &[&str] = &["api", "watch", "database", "schedule", "mail", "web"];
/// Environment variables with the prefix that are not setting overrides.
const NOT_OVERRIDES: &[&str] = &["PQWATCH_CONFIG", "PQWATCH_LOG"];

impl Settings {
    /// Reads `file`, applies `PQWATCH_<SECTION>_<KEY>` overrides from `env`, and validates.
    pub fn load(
        file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Settings::from_toml(file, &text, env)
    }

    pub fn from_toml(
        file: &Path,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let invalid = |message: String, fix: &str| ConfigError::Invalid {
            file: file.to_owned(),
            message,
            fix: fix.to_owned(),
        };
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            invalid(
                one_line(&e.to_string()),
                "correct the TOML syntax at the place named",
            )
        })?;
        apply_env(&mut table, env)?;
        let settings: Settings = table.try_into().map_err(|e: toml::de::Error| {
            let message = one_line(&e.to_string());
            let fix = if message.contains("missing field") {
                "add the key (every key, with its default, is in the shipped config/pqwatch.toml)"
            } else if message.contains("unknown field") {
                "remove or rename the key; the valid keys are listed in the message"
            } else {
                "give the key a value of the type the shipped config/pqwatch.toml shows"
            };
            invalid(message, fix)
        })?;
        settings.validate(file)?;
        Ok(settings)
    }

    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String, fix: &str| {
            Err(ConfigError::Invalid {
                file: file.to_owned(),
                message: format!("[{key}] {message}"),
                fix: fix.to_owned(),
            })
        };
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
        if !(api.max_rps.is_finite() && api.max_rps > 0.0) {
            return bad(
                "api.max_rps",
                format!("{} is not a positive rate", api.max_rps),
                "use a positive number of requests per second, e.g. 5",
            );
        }
        if api.timeout_secs == 0 {
            return bad(
                "api.timeout_secs",
                "is 0".into(),
                "use a timeout in seconds of at least 1, e.g. 30",
            );
        }
        if api.concurrency == 0 || api.concurrency > 32 {
            return bad(
                "api.concurrency",
                format!("{} is out of range", api.concurrency),
                "use a number of parallel requests from 1 to 32 (4 is polite)",
            );
        }
        let watch = &self.watch;
        if watch.keywords.iter().all(|k| k.trim().is_empty()) {
            return bad(
                "watch.keywords",
                "is empty".into(),
                "list the words and phrases to watch, e.g. [\"prison\", \"probation\"]",
            );
        }
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
        if mail.digest_hour > 23 || mail.max_attempts == 0 {
            return bad(
                "mail.digest_hour",
                format!(
                    "digest_hour {} / max_attempts {}",
                    mail.digest_hour, mail.max_attempts
                ),
                "use an hour from 0 to 23 and at least 1 attempt",
            );
        }
        let exprs = self.schedule.cron.expressions();
        if exprs.is_empty() {
            return bad(
                "schedule.cron",
                "is empty".into(),
                "give at least one expression, e.g. \"0 */10 7-22 * * Mon-Fri\"",
            );
        }
        for e in exprs {
            if let Err(err) = crate::daemon::Schedule::parse(&[e]) {
                return bad(
                    "schedule.cron",
                    err,
                    "use sec min hour day-of-month month day-of-week, e.g. \"0 */10 7-22 * * Mon-Fri\"",
                );
            }
        }
        Ok(())
    }
}

/// Applies `PQWATCH_API_BASE_URL=...`-style overrides: section, then key, values read as TOML
/// where they parse (numbers, booleans, arrays) and as strings otherwise.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
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
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        let entry = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(key, value);
            }
            _ => {
                return Err(ConfigError::Env {
                    var,
                    message: format!("[{section}] is not a section in the file"),
                    fix: "make it a [section] table in the config file".into(),
                })
            }
        }
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
    fn an_environment_variable_for_no_section_is_refused_by_name() {
        let msg = load(&shipped(), &[("PQWATCH_NOPE_X", "1")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("PQWATCH_NOPE_X"), "{msg}");
    }
}
