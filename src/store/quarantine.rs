//! Records that could not be read: attempts counted per pass, quarantine after a set number (or
//! at once for a record refused for its size), the list `answers quarantined` shows, and the
//! release of a row when its record is stored.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::Store;
use crate::model::DocKind;

/// One record that failed to read in this pass.
#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: DocKind,
    /// `id:123`, or `fp:` and the list fingerprint for a record without a numeric id.
    pub key: String,
    pub api_id: Option<i64>,
    pub uin: Option<String>,
    pub house: Option<String>,
    pub day: Option<NaiveDate>,
    pub fingerprint: String,
    pub reason: String,
    /// The record as the API sent it.
    pub raw: serde_json::Value,
    /// Quarantine now, whatever the attempts (a record refused for its size: asking again
    /// gives the same answer).
    pub at_once: bool,
}

/// What recording a failure decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureState {
    /// Failed passes with this fingerprint, this one included.
    pub attempts: i64,
    /// In quarantine now (this pass or before): the cursor may move past it.
    pub quarantined: bool,
}

/// One line of `pqwatch answers quarantined`.
#[derive(Clone, Debug, Serialize)]
pub struct QuarantinedRecord {
    pub kind: DocKind,
    /// The API's id, when the record has a numeric one.
    pub id: Option<i64>,
    pub uin: Option<String>,
    pub house: Option<String>,
    /// The listed day (answered, corrected or made), when it could be read.
    pub day: Option<NaiveDate>,
    pub reason: String,
    pub attempts: i64,
    pub first_failed_at: String,
    pub last_failed_at: String,
    pub quarantined_at: String,
    pub fingerprint: String,
    /// The record exactly as the API sent it.
    pub raw: serde_json::Value,
}

impl Store {
    /// For these record keys, the fingerprint each was quarantined with (held records are
    /// not returned: they are tried again).
    pub fn quarantined_fingerprints(
        &self,
        kind: DocKind,
        keys: &[String],
    ) -> anyhow::Result<HashMap<String, String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT fingerprint FROM quarantine
             WHERE kind = ?1 AND record_key = ?2 AND quarantined_at IS NOT NULL",
        )?;
        let mut out = HashMap::new();
        for key in keys {
            let mut rows = stmt.query(params![kind.as_str(), key])?;
            if let Some(r) = rows.next()? {
                out.insert(key.clone(), r.get(0)?);
            }
        }
        Ok(out)
    }

    /// Records this pass's failures in one transaction. A record counts one attempt per pass
    /// (`now` is the pass's time, so being listed twice in a pass counts once); a changed
    /// fingerprint starts the count again. It is quarantined once its attempts reach
    /// `quarantine_after`, or at once when `at_once`.
    pub fn record_failures(
        &mut self,
        failures: &[Failure],
        now: DateTime<Utc>,
        quarantine_after: u32,
    ) -> anyhow::Result<Vec<FailureState>> {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(failures.len());
        for f in failures {
            let prev: Option<(String, i64, String, String, Option<String>)> = tx
                .prepare_cached(
                    "SELECT fingerprint, attempts, first_failed_at, last_failed_at, quarantined_at
                     FROM quarantine WHERE kind = ?1 AND record_key = ?2",
                )?
                .query_row(params![f.kind.as_str(), f.key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            let (attempts, first_failed_at, quarantined_at) = match prev {
                Some((fp, n, first, last, q)) if fp == f.fingerprint => {
                    (if last == now { n } else { n + 1 }, first, q)
                }
                _ => (1, now.clone(), None),
            };
            let quarantined_at = quarantined_at.or_else(|| {
                (f.at_once || attempts >= i64::from(quarantine_after)).then(|| now.clone())
            });
            tx.prepare_cached(
                "INSERT OR REPLACE INTO quarantine (kind, record_key, api_id, uin, house, day,
                     fingerprint, reason, raw_json, attempts, first_failed_at, last_failed_at,
                     quarantined_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                f.kind.as_str(),
                f.key,
                f.api_id,
                f.uin,
                f.house,
                f.day,
                f.fingerprint,
                f.reason,
                serde_json::to_string(&f.raw)?,
                attempts,
                first_failed_at,
                now,
                quarantined_at
            ])?;
            out.push(FailureState {
                attempts,
                quarantined: quarantined_at.is_some(),
            });
        }
        tx.commit()?;
        Ok(out)
    }

    /// Every quarantined record, the most recently failed first.
    pub fn quarantined(&self) -> anyhow::Result<Vec<QuarantinedRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, api_id, uin, house, day, reason, attempts, first_failed_at,
                    last_failed_at, quarantined_at, fingerprint, raw_json
             FROM quarantine WHERE quarantined_at IS NOT NULL
             ORDER BY last_failed_at DESC, kind, record_key",
        )?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(0)?;
            let raw: String = r.get(11)?;
            Ok(QuarantinedRecord {
                kind: DocKind::parse(&kind).unwrap_or(DocKind::Question),
                id: r.get(1)?,
                uin: r.get(2)?,
                house: r.get(3)?,
                day: r.get(4)?,
                reason: r.get(5)?,
                attempts: r.get(6)?,
                first_failed_at: r.get(7)?,
                last_failed_at: r.get(8)?,
                quarantined_at: r.get(9)?,
                fingerprint: r.get(10)?,
                raw: serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw)),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many records are quarantined.
    pub fn quarantined_count(&self) -> anyhow::Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM quarantine WHERE quarantined_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?)
    }
}

/// A record was read and stored: it is neither held nor quarantined any more. A row without a
/// numeric id is released by the same UIN and house (the id it lacked is what was fixed).
pub(super) fn release(
    tx: &Transaction<'_>,
    kind: DocKind,
    api_id: i64,
    uin: Option<&str>,
    house: Option<&str>,
) -> anyhow::Result<()> {
    tx.prepare_cached("DELETE FROM quarantine WHERE kind = ?1 AND record_key = ?2")?
        .execute(params![kind.as_str(), format!("id:{api_id}")])?;
    if let Some(uin) = uin {
        tx.prepare_cached(
            "DELETE FROM quarantine
             WHERE kind = ?1 AND api_id IS NULL AND uin = ?2 AND house IS ?3",
        )?
        .execute(params![kind.as_str(), uin, house])?;
    }
    Ok(())
}
