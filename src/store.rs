//! The SQLite store: the connection, migrations, and every SQL statement pqwatch runs.
//!
//! It knows nothing of HTTP, HTML parsing or email. Each public write is one transaction, so a
//! crash leaves either all of a change or none of it. The database runs in WAL mode with
//! `synchronous=FULL`: a committed answer survives a power cut, not only a crash.

use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::model::{official_url, DocKind, Document};

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("store/migrations/001_initial.sql"),
    include_str!("store/migrations/002_statistics.sql"),
    include_str!("store/migrations/003_alerts.sql"),
    include_str!("store/migrations/004_secrets.sql"),
    include_str!("store/migrations/005_identity.sql"),
    include_str!("store/migrations/006_delivery.sql"),
    include_str!("store/migrations/007_quarantine.sql"),
    include_str!("store/migrations/008_backfill_coverage.sql"),
    include_str!("store/migrations/009_web.sql"),
];

mod alerts;
mod pages;
mod quarantine;
mod read;
mod signups;
mod statistics;
pub use alerts::{AlertRow, Bounced, Confirmed, DueAlert, SubscriberRow};
pub use pages::{AnswerChanges, FigureChange, StatisticsPage};
pub use quarantine::{Failure, FailureState, QuarantinedRecord};
pub use read::ReadPool;
pub use signups::AddressStatus;
pub use statistics::{
    ChangeRow, Provenance, Recorder, SeriesDetail, SeriesSummary, SeriesValue, SourceRow,
    VersionRef,
};

pub struct Store {
    conn: Connection,
}

/// What saving an item did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaveOutcome {
    /// It matched no keyword and was never stored: only remembered as seen.
    NotMatched,
    /// A new item, stored with its first answer version.
    New,
    /// A known item whose answer content changed: stored as version `n`.
    NewVersion(i64),
    /// A known item whose answer content is what we already hold.
    Unchanged,
}

/// One stored item as `answers list` and `answers show` present it.
#[derive(Clone, Debug, Serialize)]
pub struct StoredAnswer {
    pub kind: DocKind,
    pub id: i64,
    pub uin: Option<String>,
    pub house: Option<String>,
    pub heading: Option<String>,
    pub date_tabled: Option<NaiveDate>,
    pub date_answered: Option<NaiveDate>,
    pub date_corrected: Option<NaiveDate>,
    pub is_holding: bool,
    pub is_correction: bool,
    pub answering_body_id: Option<i64>,
    pub answering_body: Option<String>,
    pub asking_member: Option<String>,
    pub answering_member: Option<String>,
    pub matched_keywords: Vec<String>,
    pub url: Option<String>,
    pub versions: i64,
}

/// One version of an answer's content.
#[derive(Clone, Debug, Serialize)]
pub struct AnswerVersion {
    pub version: i64,
    pub stored_at: String,
    pub is_holding: bool,
    pub is_correction: bool,
    pub date_answered: Option<NaiveDate>,
    pub date_corrected: Option<NaiveDate>,
    pub answer_html: String,
}

/// `answers show`: the item, its question, and every version of its answer.
#[derive(Clone, Debug, Serialize)]
pub struct AnswerDetail {
    #[serde(flatten)]
    pub answer: StoredAnswer,
    pub question_text: Option<String>,
    pub answer_versions: Vec<AnswerVersion>,
}

impl Store {
    /// Opens (creating the file and its folder if need be) and migrates the database.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_files::create_dir(dir).context("creating the database folder")?;
        }
        // 0600 from the start: it holds addresses, tokens and the signing key.
        crate::private_files::touch(path)?;
        let conn = Connection::open(path)
            .with_context(|| format!("opening database {}", path.display()))?;
        let mut store = Store { conn };
        store
            .configure()
            .with_context(|| format!("setting up database {}", path.display()))?;
        Ok(store)
    }

    fn configure(&mut self) -> anyhow::Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(10))?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.migrate()
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            anyhow::bail!(
                "the database is at schema version {version}, newer than this pqwatch knows ({}); \
                 upgrade pqwatch or restore a backup",
                MIGRATIONS.len()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)
                .with_context(|| format!("running migration {:03}", i + 1))?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Copies the live database to `dest` with SQLite's online backup, safe while pqwatch runs.
    pub fn backup(&self, dest: &Path) -> anyhow::Result<()> {
        if dest.exists() {
            anyhow::bail!("{} exists already; give a new file name", dest.display());
        }
        crate::private_files::touch(dest)?;
        let mut out =
            Connection::open(dest).with_context(|| format!("creating {}", dest.display()))?;
        let backup = rusqlite::backup::Backup::new(&self.conn, &mut out)?;
        backup
            .run_to_completion(256, std::time::Duration::from_millis(10), None)
            .with_context(|| format!("backing up to {}", dest.display()))?;
        Ok(())
    }

    pub fn schema_version(&self) -> anyhow::Result<usize> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// The secret kept under `name`, storing `fresh` first if there is none yet. The first
    /// caller's value wins, so concurrent processes agree on one key.
    pub fn secret(&mut self, name: &str, fresh: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.conn.execute(
            "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
            rusqlite::params![name, fresh],
        )?;
        Ok(self
            .conn
            .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                r.get(0)
            })?)
    }

    /// The secret kept under `name`, if any; works on a read-only connection.
    pub fn existing_secret(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Replaces (or sets) the secret kept under `name`.
    pub fn replace_secret(&mut self, name: &str, fresh: &[u8]) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO secrets (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            rusqlite::params![name, fresh],
        )?;
        Ok(())
    }

    /// The fingerprints last seen for these items (absent: never seen).
    pub fn seen_fingerprints(
        &self,
        kind: DocKind,
        api_ids: &[i64],
    ) -> anyhow::Result<std::collections::HashMap<i64, String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fingerprint FROM seen WHERE kind = ?1 AND api_id = ?2")?;
        let mut out = std::collections::HashMap::new();
        for id in api_ids {
            if let Some(fp) = stmt
                .query_row(params![kind.as_str(), id], |r| r.get::<_, String>(0))
                .optional()?
            {
                out.insert(*id, fp);
            }
        }
        Ok(out)
    }

    /// Stores a page of items (full detail) in one transaction: each item, a new answer version
    /// when its content changed, and the list fingerprint that lets the next poll skip it. An
    /// item that matched no keyword, and was never stored before, is only remembered as seen.
    /// For each new answer version, `on_version` files its figures through a [`Recorder`] in the
    /// same transaction. One transaction a page, not an item: a commit is an fsync, and a crash
    /// loses at most the page in hand, which the next pass fetches again.
    pub fn save_documents<T, F>(
        &mut self,
        items: &[(Document, String, Vec<String>)],
        now: DateTime<Utc>,
        mut on_version: F,
    ) -> anyhow::Result<Vec<(SaveOutcome, Option<T>)>>
    where
        F: FnMut(&Recorder<'_, '_>, &Document, VersionRef) -> anyhow::Result<T>,
    {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(items.len());
        for (doc, fp, kw) in items {
            let (outcome, version) = save_in(&tx, doc, fp, kw, &now)?;
            let recorded = match version {
                Some(v) => Some(on_version(&Recorder { tx: &tx }, doc, v)?),
                None => None,
            };
            out.push((outcome, recorded));
        }
        tx.commit()?;
        Ok(out)
    }

    /// Whether this item is already stored (so a change to it is kept even if it no longer matches).
    pub fn is_stored(&self, kind: DocKind, api_id: i64) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM documents WHERE kind = ?1 AND api_id = ?2")?
            .exists(params![kind.as_str(), api_id])?)
    }

    pub fn cursor(&self, kind: DocKind) -> anyhow::Result<Option<NaiveDate>> {
        Ok(self
            .conn
            .query_row(
                "SELECT day FROM cursors WHERE kind = ?1",
                [kind.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_cursor(
        &mut self,
        kind: DocKind,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO cursors (kind, day, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind) DO UPDATE SET day = excluded.day, updated_at = excluded.updated_at",
            params![kind.as_str(), day, now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// The ranges of UK days a backfill has fully stored for `kind`, oldest first, merged.
    pub fn backfill_coverage(&self, kind: DocKind) -> anyhow::Result<Vec<(NaiveDate, NaiveDate)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT first_day, last_day FROM backfill_coverage WHERE kind = ?1 ORDER BY first_day",
        )?;
        let rows = stmt
            .query_map(params![kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(NaiveDate, NaiveDate)>>>()?;
        Ok(rows)
    }

    /// Records that every day from `first` to `last` is fully stored for `kind`, merging the
    /// range with any it overlaps or touches, in one transaction.
    pub fn add_backfill_coverage(
        &mut self,
        kind: DocKind,
        first: NaiveDate,
        last: NaiveDate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        let (lo, hi) = (
            first.pred_opt().unwrap_or(first),
            last.succ_opt().unwrap_or(last),
        );
        let touching: Vec<(NaiveDate, NaiveDate)> = {
            let mut stmt = tx.prepare(
                "SELECT first_day, last_day FROM backfill_coverage
                 WHERE kind = ?1 AND first_day <= ?3 AND last_day >= ?2",
            )?;
            let rows = stmt
                .query_map(params![kind.as_str(), lo, hi], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        };
        let merged_first = touching.iter().map(|r| r.0).fold(first, NaiveDate::min);
        let merged_last = touching.iter().map(|r| r.1).fold(last, NaiveDate::max);
        tx.execute(
            "DELETE FROM backfill_coverage WHERE kind = ?1 AND first_day <= ?3 AND last_day >= ?2",
            params![kind.as_str(), lo, hi],
        )?;
        tx.execute(
            "INSERT INTO backfill_coverage (kind, first_day, last_day, updated_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![kind.as_str(), merged_first, merged_last, now.to_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Which of `api_ids` are stored items (not merely seen in a list): their new versions and
    /// corrections are always read in full.
    pub fn stored_ids(
        &self,
        kind: DocKind,
        api_ids: &[i64],
    ) -> anyhow::Result<std::collections::HashSet<i64>> {
        let mut out = std::collections::HashSet::new();
        for &id in api_ids {
            if self.is_stored(kind, id)? {
                out.insert(id);
            }
        }
        Ok(out)
    }

    /// Records one finished pass.
    pub fn record_poll(
        &mut self,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        mode: &str,
        ok: bool,
        report_json: &str,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO polls (started_at, finished_at, mode, ok, report_json, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                started.to_rfc3339(),
                finished.to_rfc3339(),
                mode,
                ok,
                report_json,
                error
            ],
        )?;
        Ok(())
    }

    /// Stored items answered on or after `since`, newest first.
    pub fn list_answers(&self, since: Option<NaiveDate>) -> anyhow::Result<Vec<StoredAnswer>> {
        let mut stmt = self.conn.prepare(&format!(
            "{ANSWER_COLUMNS} WHERE ?1 IS NULL OR d.date_answered >= ?1
             ORDER BY d.date_answered DESC, d.api_id DESC"
        ))?;
        let rows = stmt.query_map([since], answer_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One stored item with every version of its answer.
    pub fn answer_detail(
        &self,
        kind: DocKind,
        api_id: i64,
    ) -> anyhow::Result<Option<AnswerDetail>> {
        let found = self
            .conn
            .query_row(
                &format!("{ANSWER_COLUMNS} WHERE d.kind = ?1 AND d.api_id = ?2"),
                params![kind.as_str(), api_id],
                |r| {
                    Ok((
                        answer_from_row(r)?,
                        r.get::<_, i64>("doc_id")?,
                        r.get("question_text")?,
                    ))
                },
            )
            .optional()?;
        let Some((answer, doc_id, question_text)) = found else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare(
            "SELECT version, stored_at, is_holding, is_correction, date_answered, date_corrected,
                    body_html
             FROM answer_versions WHERE document_id = ?1 ORDER BY version",
        )?;
        let answer_versions = stmt
            .query_map([doc_id], |r| {
                Ok(AnswerVersion {
                    version: r.get(0)?,
                    stored_at: r.get(1)?,
                    is_holding: r.get(2)?,
                    is_correction: r.get(3)?,
                    date_answered: r.get(4)?,
                    date_corrected: r.get(5)?,
                    answer_html: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(AnswerDetail {
            answer,
            question_text,
            answer_versions,
        }))
    }

    /// The last pass, and the last successful one: (finished_at, mode, ok, report_json, error).
    #[allow(clippy::type_complexity)]
    pub fn last_polls(
        &self,
    ) -> anyhow::Result<(
        Option<(String, String, bool, String, Option<String>)>,
        Option<String>,
    )> {
        let last = self
            .conn
            .query_row(
                "SELECT finished_at, mode, ok, report_json, error FROM polls ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let last_ok = self
            .conn
            .query_row(
                "SELECT finished_at FROM polls WHERE ok AND mode = 'steady' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let last_error = self
            .conn
            .query_row(
                "SELECT error FROM polls WHERE error IS NOT NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
        let last = last.map(
            |(f, m, ok, j, e): (String, String, bool, String, Option<String>)| {
                (f, m, ok, j, e.or(last_error))
            },
        );
        Ok((last, last_ok))
    }

    /// Number of statistics.
    pub fn statistics_count(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM statistics", [], |r| r.get(0))?)
    }

    /// Row counts used by tests, benchmarks and status: (items, answer versions, seen).
    pub fn counts(&self) -> anyhow::Result<(i64, i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM answer_versions),
                    (SELECT count(*) FROM seen)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }
}

const ANSWER_COLUMNS: &str = "SELECT d.id AS doc_id, d.kind, d.api_id, d.uin, d.house, d.heading,
        d.date_tabled, d.date_answered, d.date_corrected, d.is_holding, d.is_correction,
        d.answering_body_id, d.answering_body_name, d.asking_member, d.answering_member,
        d.matched_keywords, d.question_text,
        (SELECT count(*) FROM answer_versions v WHERE v.document_id = d.id) AS versions
     FROM documents d";

fn answer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAnswer> {
    let kind_text: String = r.get("kind")?;
    let kind = DocKind::parse(&kind_text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown kind {kind_text:?}").into(),
        )
    })?;
    let keywords: String = r.get("matched_keywords")?;
    let date_tabled: Option<NaiveDate> = r.get("date_tabled")?;
    let uin: Option<String> = r.get("uin")?;
    Ok(StoredAnswer {
        kind,
        id: r.get("api_id")?,
        url: official_url(kind, date_tabled, uin.as_deref()),
        uin,
        house: r.get("house")?,
        heading: r.get("heading")?,
        date_tabled,
        date_answered: r.get("date_answered")?,
        date_corrected: r.get("date_corrected")?,
        is_holding: r.get("is_holding")?,
        is_correction: r.get("is_correction")?,
        answering_body_id: r.get("answering_body_id")?,
        answering_body: r.get("answering_body_name")?,
        asking_member: r.get("asking_member")?,
        answering_member: r.get("answering_member")?,
        matched_keywords: serde_json::from_str(&keywords).unwrap_or_default(),
        versions: r.get("versions")?,
    })
}

fn save_in(
    tx: &Transaction<'_>,
    doc: &Document,
    fingerprint: &str,
    keywords: &[String],
    now: &str,
) -> anyhow::Result<(SaveOutcome, Option<VersionRef>)> {
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM documents WHERE kind = ?1 AND api_id = ?2")?
        .query_row(params![doc.kind.as_str(), doc.api_id], |r| r.get(0))
        .optional()?;
    let mut version_ref = None;
    let outcome = if existing.is_none() && keywords.is_empty() {
        SaveOutcome::NotMatched
    } else {
        let doc_id = upsert_document(tx, doc, keywords, now)?;
        let hash = content_hash(doc);
        let latest: Option<(i64, String, bool)> = tx
            .prepare_cached(
                "SELECT version, content_hash, is_holding FROM answer_versions
                 WHERE document_id = ?1 ORDER BY version DESC LIMIT 1",
            )?
            .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        match latest {
            Some((_, h, _)) if h == hash => SaveOutcome::Unchanged,
            latest => {
                let version = latest.as_ref().map_or(1, |(v, _, _)| v + 1);
                // A changed answer is a correction, unless it replaces a holding answer.
                let replaces_substantive = latest.as_ref().is_some_and(|(_, _, holding)| !holding);
                let version_id: i64 = tx.prepare_cached(
                    "INSERT INTO answer_versions (document_id, version, body_html, content_hash,
                         is_holding, is_correction, date_answered, date_corrected, stored_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                )?
                .query_row(params![
                    doc_id,
                    version,
                    doc.body_html,
                    hash,
                    doc.is_holding,
                    doc.is_correction,
                    doc.date_answered,
                    doc.date_corrected,
                    now
                ], |r| r.get(0))?;
                version_ref = Some(VersionRef {
                    document_id: doc_id,
                    version_id,
                    version,
                    is_correction: doc.is_correction || replaces_substantive,
                });
                if version == 1 {
                    SaveOutcome::New
                } else {
                    SaveOutcome::NewVersion(version)
                }
            }
        }
    };
    tx.prepare_cached(
        "INSERT INTO seen (kind, api_id, fingerprint, matched, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (kind, api_id) DO UPDATE SET fingerprint = excluded.fingerprint,
             matched = excluded.matched, seen_at = excluded.seen_at",
    )?
    .execute(params![
        doc.kind.as_str(),
        doc.api_id,
        fingerprint,
        outcome != SaveOutcome::NotMatched,
        now
    ])?;
    quarantine::release(
        tx,
        doc.kind,
        doc.api_id,
        doc.uin.as_deref(),
        doc.house.as_deref(),
    )?;
    Ok((outcome, version_ref))
}

fn upsert_document(
    tx: &Transaction<'_>,
    doc: &Document,
    keywords: &[String],
    now: &str,
) -> anyhow::Result<i64> {
    let keywords = serde_json::to_string(keywords)?;
    let raw = serde_json::to_string(&doc.raw)?;
    Ok(tx.prepare_cached(
        "INSERT INTO documents (kind, api_id, uin, house, heading, question_text, date_tabled,
             date_answered, date_corrected, is_holding, is_correction, answering_body_id,
             answering_body_name, asking_member, answering_member, matched_keywords, raw_json,
             first_seen_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18)
         ON CONFLICT (kind, api_id) DO UPDATE SET
             uin = excluded.uin, house = excluded.house, heading = excluded.heading,
             question_text = excluded.question_text, date_tabled = excluded.date_tabled,
             date_answered = excluded.date_answered, date_corrected = excluded.date_corrected,
             is_holding = excluded.is_holding, is_correction = excluded.is_correction,
             answering_body_id = excluded.answering_body_id,
             answering_body_name = excluded.answering_body_name,
             asking_member = excluded.asking_member, answering_member = excluded.answering_member,
             matched_keywords = CASE WHEN excluded.matched_keywords = '[]'
                 THEN documents.matched_keywords ELSE excluded.matched_keywords END,
             raw_json = excluded.raw_json, updated_at = excluded.updated_at
         RETURNING id",
    )?
    .query_row(
        params![
            doc.kind.as_str(),
            doc.api_id,
            doc.uin,
            doc.house,
            doc.heading,
            doc.question_text,
            doc.date_tabled,
            doc.date_answered,
            doc.date_corrected,
            doc.is_holding,
            doc.is_correction,
            doc.answering_body_id,
            doc.answering_body_name,
            doc.asking_member,
            doc.answering_member,
            keywords,
            raw,
            now
        ],
        |r| r.get(0),
    )?)
}

/// What makes two versions of an answer different: its HTML and whether it is a holding answer.
fn content_hash(doc: &Document) -> String {
    let mut h = Fnv64::default();
    h.write(doc.body_html.as_bytes());
    h.write(&[doc.is_holding as u8]);
    format!("{:016x}", h.0)
}

/// FNV-1a, 64 bit: a stable, dependency-free hash for change detection (not for security).
pub struct Fnv64(pub u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Document;

    fn doc(id: i64, html: &str) -> Document {
        let rec = serde_json::json!({"value": {"id": id, "uin": "1", "house": "Commons",
            "heading": "Prisons", "dateTabled": "2024-01-01T00:00:00",
            "dateAnswered": "2024-01-05T00:00:00", "answerText": html}});
        Document::from_record(DocKind::Question, &rec).unwrap()
    }

    fn save(s: &mut Store, d: Document, fp: &str, kw: &[String]) -> SaveOutcome {
        s.save_documents(&[(d, fp.to_owned(), kw.to_vec())], Utc::now(), |_, _, _| {
            Ok(())
        })
        .unwrap()[0]
            .0
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/db.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_secret_is_made_once_and_then_kept() {
        let (dir, mut store) = open();
        assert_eq!(store.secret("links", b"first").unwrap(), b"first");
        assert_eq!(store.secret("links", b"second").unwrap(), b"first");
        drop(store);
        let mut again = Store::open(&dir.path().join("sub/db.sqlite")).unwrap();
        assert_eq!(again.secret("links", b"third").unwrap(), b"first");
    }

    #[test]
    fn opening_creates_the_folder_runs_migrations_and_uses_wal() {
        let (dir, store) = open();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len());
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        let again = Store::open(&dir.path().join("sub/db.sqlite")).unwrap();
        assert_eq!(again.schema_version().unwrap(), MIGRATIONS.len());
    }

    #[test]
    fn a_new_version_is_stored_only_when_the_content_changes() {
        let (_d, mut s) = open();
        let kw = vec!["prison".to_owned()];
        assert_eq!(
            save(&mut s, doc(1, "<p>a</p>"), "f1", &kw),
            SaveOutcome::New
        );
        assert_eq!(
            save(&mut s, doc(1, "<p>a</p>"), "f2", &kw),
            SaveOutcome::Unchanged
        );
        assert_eq!(
            save(&mut s, doc(1, "<p>b</p>"), "f3", &kw),
            SaveOutcome::NewVersion(2)
        );
        assert_eq!(s.counts().unwrap(), (1, 2, 1));
        assert_eq!(
            s.seen_fingerprints(DocKind::Question, &[1])
                .unwrap()
                .get(&1)
                .map(String::as_str),
            Some("f3")
        );
    }

    #[test]
    fn an_unmatched_item_is_remembered_but_not_stored() {
        let (_d, mut s) = open();
        let out = save(&mut s, doc(2, "x"), "f", &[]);
        assert_eq!(out, SaveOutcome::NotMatched);
        assert_eq!(s.counts().unwrap(), (0, 0, 1));
        assert!(!s.is_stored(DocKind::Question, 2).unwrap());
    }

    #[test]
    fn a_stored_item_keeps_its_new_versions_even_when_it_stops_matching() {
        let (_d, mut s) = open();
        let kw = vec!["prison".to_owned()];
        save(&mut s, doc(3, "a"), "f", &kw);
        let out = save(&mut s, doc(3, "b"), "g", &[]);
        assert_eq!(out, SaveOutcome::NewVersion(2));
        let detail = s.answer_detail(DocKind::Question, 3).unwrap().unwrap();
        assert_eq!(detail.answer.matched_keywords, kw);
        assert_eq!(detail.answer_versions.len(), 2);
    }

    #[test]
    fn a_failure_counts_once_a_pass_quarantines_at_its_limit_and_a_new_fingerprint_starts_again() {
        let (_d, mut s) = open();
        let f = |fp: &str| Failure {
            kind: DocKind::Question,
            key: "id:9".into(),
            api_id: Some(9),
            uin: Some("19".into()),
            house: Some("Commons".into()),
            day: NaiveDate::from_ymd_opt(2024, 1, 5),
            fingerprint: fp.into(),
            reason: "bad".into(),
            raw: serde_json::json!({"id": 9}),
            at_once: false,
        };
        let t = |secs: i64| DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap();
        let state = |s: &mut Store, fp: &str, at: i64| {
            let r = s.record_failures(&[f(fp)], t(at), 3).unwrap()[0];
            (r.attempts, r.quarantined)
        };
        assert_eq!(state(&mut s, "a", 0), (1, false));
        assert_eq!(
            state(&mut s, "a", 0),
            (1, false),
            "twice in one pass is one attempt"
        );
        assert_eq!(state(&mut s, "a", 1), (2, false));
        assert_eq!(state(&mut s, "a", 2), (3, true));
        assert_eq!(s.quarantined_count().unwrap(), 1);
        let keys = ["id:9".to_owned()];
        let q = s
            .quarantined_fingerprints(DocKind::Question, &keys)
            .unwrap();
        assert_eq!(q.get("id:9").map(String::as_str), Some("a"));
        assert_eq!(
            state(&mut s, "b", 3),
            (1, false),
            "changed by the API: tried afresh"
        );
        assert_eq!(s.quarantined_count().unwrap(), 0);
        let mut at_once = f("c");
        at_once.at_once = true;
        assert!(s.record_failures(&[at_once], t(4), 3).unwrap()[0].quarantined);
        // Stored at last: released.
        let mut d = doc(9, "<p>fine</p>");
        d.uin = Some("19".into());
        save(&mut s, d, "c", &["prison".to_owned()]);
        assert_eq!(s.quarantined_count().unwrap(), 0);
        assert!(s.quarantined().unwrap().is_empty());
    }

    #[test]
    fn a_newer_schema_than_this_binary_knows_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = format!("{:#}", Store::open(&path).err().unwrap());
        assert!(err.contains("newer than this pqwatch knows"), "{err}");
    }
}
