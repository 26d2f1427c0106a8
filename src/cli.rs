//! The command line: clap's types, and nothing about how commands are carried out.
//!
//! Every name here (commands, flags) is an interface users' scripts rely on: see the README.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pqwatch",
    version,
    about = "Watches UK Parliament written answers about prisons and probation, and alerts on new figures"
)]
pub struct Cli {
    /// The config file. Without it (or PQWATCH_CONFIG), /etc/pqwatch/pqwatch.toml if it
    /// exists, else the built-in defaults. Keys left out of the file keep their defaults.
    #[arg(long, global = true, env = "PQWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run unattended: poll on the [schedule] cron expression until SIGTERM or SIGINT.
    Run,
    /// Run one pass now; with --from and --to, backfill a date range (resumable).
    Poll(PollArgs),
    /// Fetch history: every answer from --since to --until (default today), newest first,
    /// in 7-day chunks, resumable, and silent unless --alert. Days an earlier backfill fully
    /// stored are skipped.
    Backfill(BackfillArgs),
    /// Stored answers.
    #[command(subcommand)]
    Answers(AnswersCommand),
    /// Add a subscriber, or change an existing one: only the settings given change, and the
    /// result is shown. Unconfirmed subscribers get only a confirmation email.
    Subscribe {
        /// The subscriber's address, e.g. ops@union.org.uk.
        email: String,
        /// Words and phrases to follow, comma-separated: "drones, assaults on staff" (needed
        /// for a new subscriber).
        #[arg(long)]
        keywords: Option<String>,
        /// "daily" for one digest a day at [mail] digest_hour, "weekly" for one on Mondays at
        /// that hour; "instant" for an email per answer (the default for a new subscriber).
        #[arg(long, value_name = "daily|weekly|instant")]
        digest: Option<String>,
        /// Only answers from these answering bodies (API ids, comma-separated; MoJ is 54);
        /// "" for all.
        #[arg(long, value_name = "IDS")]
        bodies: Option<String>,
        /// Only answers from these houses (Commons, Lords); "" for both.
        #[arg(long, value_name = "HOUSES")]
        houses: Option<String>,
        /// The subscriber's name, for greetings (one line, at most 200 characters).
        #[arg(long)]
        name: Option<String>,
        /// Also send answers that match but carry no new figures (`--include-no-figures=no`
        /// turns it off).
        #[arg(long, value_name = "yes|no", num_args = 0..=1, default_missing_value = "yes",
              require_equals = true, value_parser = clap::builder::BoolishValueParser::new())]
        include_no_figures: Option<bool>,
        /// Mark confirmed now (the organisation already has the subscriber's consent).
        #[arg(long)]
        confirmed: bool,
    },
    /// Stop all email to an address.
    Unsubscribe {
        /// The address to stop emailing.
        email: String,
    },
    /// Subscribers.
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// The outbox: what was sent, to whom, when, and what failed.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The key that signs the links in emails.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Health for people and monitors: last and next poll, cursor, counts, pending, overdue and
    /// failed alerts, the last error. Exits 1 when the last successful poll is older than
    /// [schedule] stale_after_minutes, or an alert has waited longer than
    /// [mail] overdue_after_minutes.
    Status {
        /// Print JSON (for monitors) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Copy the database to FILE while pqwatch keeps running (SQLite online backup). To restore,
    /// stop pqwatch and put the copy where [database] path points (see the README).
    Backup {
        /// A new file to write; an existing one is never overwritten.
        file: PathBuf,
    },
    /// Statistics: the series recognised across answers.
    #[command(subcommand)]
    Series(SeriesCommand),
    /// New and revised figures, newest first.
    Changes {
        /// Only changes recorded on or after this UK day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE", value_parser = uk_day)]
        since: Option<NaiveDate>,
        /// Print JSON (an array of changes) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Email: check the configured transport before subscribers depend on it.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Extract the numeric tables of one answer: FILE is a single-question API response (JSON),
    /// an HTML fragment, or plain text.
    Extract {
        /// The file to read (`-` for standard input).
        file: PathBuf,
        /// Print `{"tables":[...]}` instead of a readable rendering.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Run exactly one pass and exit (required: `pqwatch run` polls on a schedule).
    #[arg(long)]
    pub once: bool,
    /// First UK day of a backfill (YYYY-MM-DD); needs --to.
    #[arg(long, requires = "to", value_name = "DATE", value_parser = uk_day)]
    pub from: Option<NaiveDate>,
    /// Last UK day of a backfill (YYYY-MM-DD); needs --from.
    #[arg(long, requires = "from", value_name = "DATE", value_parser = uk_day)]
    pub to: Option<NaiveDate>,
    /// Queue alerts for what a backfill finds (a backfill builds history silently otherwise).
    #[arg(long, requires = "from")]
    pub alert: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First UK day of the history to fetch (YYYY-MM-DD), e.g. 2014-01-01.
    #[arg(long, value_name = "DATE", value_parser = uk_day)]
    pub since: NaiveDate,
    /// Last UK day (YYYY-MM-DD); today when not given.
    #[arg(long, value_name = "DATE", value_parser = uk_day)]
    pub until: Option<NaiveDate>,
    /// Queue alerts for what the backfill finds (it builds history silently otherwise).
    #[arg(long)]
    pub alert: bool,
}

#[derive(Debug, Subcommand)]
pub enum AnswersCommand {
    /// List stored answers, newest first.
    List {
        /// Only answers answered on or after this UK day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE", value_parser = uk_day)]
        since: Option<NaiveDate>,
        /// Print JSON (an array of answers) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Records that could never be read (or were refused for their size) and were set aside so
    /// that the cursor could move on: why, since when, and the record as the API sent it.
    Quarantined {
        /// Print JSON (an array of records) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one stored answer, with every version of its text.
    Show {
        /// The API's id of the question (or, with --statement, of the written statement).
        id: i64,
        /// ID is a written statement's id.
        #[arg(long)]
        statement: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SeriesCommand {
    /// Every statistic: id, title, unit, first and last period, number of sources.
    List {
        /// Print JSON (an array of statistics) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One statistic's time series, with every value's source and every revision.
    Show {
        /// The statistic's id, from `pqwatch series list`.
        id: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One statistic as tidy CSV: one row per published observation.
    #[command(override_usage = "pqwatch series export <ID> --csv")]
    Export {
        /// The statistic's id, from `pqwatch series list`.
        id: i64,
        /// Write CSV (the only format, and required, so scripts say what they expect).
        #[arg(long, required = true)]
        csv: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Every current subscriber.
    List {
        /// Print JSON (an array of subscribers) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Import an organisation's list: a CSV with a header row (email,name,keywords,digest,
    /// bodies,houses,confirmed,include_no_figures). All rows or none are imported.
    Import {
        /// The CSV file to import.
        file: PathBuf,
    },
    /// Lift a suspension (after [mail] suspend_after_bounces permanent failures): the address
    /// gets alerts again.
    Reactivate {
        /// The suspended subscriber's address.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Replace the key that signs the confirm and unsubscribe links. Every process (a running
    /// service too) uses the new key from its next request or pass: links in emails already
    /// sent stop working, and emails still queued are sent with new links.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts, newest first.
    List {
        /// Only alerts not yet sent.
        #[arg(long)]
        pending: bool,
        /// Print JSON (an array of alerts) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send one test message to ADDRESS through the configured transport ([mail] smtp_url, or
    /// an .eml file in [mail] outbox_dir without one) and print the server's answer. Exits 1
    /// with the reason when it is refused. Needs no database.
    Test {
        /// Where to send it, e.g. ops@union.org.uk.
        address: String,
    },
}

/// A UK day given on the command line: `YYYY-MM-DD`, with a message that says so.
fn uk_day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("{e}: not a day; give one as YYYY-MM-DD, e.g. 2014-01-01"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    fn unexplained(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if !matches!(a.get_id().as_str(), "help" | "version") && a.get_help().is_none() {
                out.push(format!("{path} {}", a.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                out.push(name.clone());
            }
            unexplained(sub, &name, out);
        }
    }

    #[test]
    fn help_explains_every_command_and_flag() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        unexplained(&cmd, "pqwatch", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn series_export_usage_puts_the_id_first() {
        let mut cmd = Cli::command();
        let usage = cmd
            .find_subcommand_mut("series")
            .and_then(|s| s.find_subcommand_mut("export"))
            .unwrap()
            .render_usage()
            .to_string();
        assert!(
            usage.contains("pqwatch series export <ID> --csv"),
            "{usage}"
        );
    }
}
