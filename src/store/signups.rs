//! Sign-ups from the web front: what a sign-up may reveal and change, the per-address limit,
//! the manage page's reads and writes by a subscriber's token, and pruning sign-ups that were
//! never confirmed.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{alerts::SubscriberRow, Store};
use crate::subscribers::Frequency;

/// An address's standing, as a sign-up needs to know it (and never tells the visitor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressStatus {
    Unknown,
    /// Signed up, not yet confirmed.
    Unconfirmed,
    Confirmed,
    Unsubscribed,
}

impl Store {
    pub fn address_status(&self, email: &str) -> anyhow::Result<AddressStatus> {
        let row: Option<(bool, bool)> = self
            .conn
            .query_row(
                "SELECT confirmed_at IS NOT NULL, unsubscribed_at IS NOT NULL FROM subscribers
                 WHERE email = ?1",
                [email],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => AddressStatus::Unknown,
            Some((_, true)) => AddressStatus::Unsubscribed,
            Some((true, false)) => AddressStatus::Confirmed,
            Some((false, false)) => AddressStatus::Unconfirmed,
        })
    }

    /// Sign-ups from the web for `email` since `since`, and records one more at `now` when
    /// fewer than `limit`: whether this one is within the limit.
    pub fn take_signup_slot(
        &mut self,
        email: &str,
        since: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let tx = self.conn.transaction()?;
        let n: i64 = tx.query_row(
            "SELECT count(*) FROM web_signups WHERE email = ?1 AND created_at >= ?2",
            params![email, since.to_rfc3339()],
            |r| r.get(0),
        )?;
        let ok = n < i64::from(limit);
        if ok {
            tx.execute(
                "INSERT INTO web_signups (email, created_at) VALUES (?1, ?2)",
                params![email, now.to_rfc3339()],
            )?;
        }
        tx.commit()?;
        Ok(ok)
    }

    /// The subscriber holding `token` who has not left, for the manage page.
    pub fn subscriber_by_token(&self, token: &str) -> anyhow::Result<Option<SubscriberRow>> {
        Ok(self.subscribers()?.into_iter().find(|s| s.token == token))
    }

    /// Whether the holder of `token` is confirmed already (`None`: no such subscriber).
    pub fn token_confirmed(&self, token: &str) -> anyhow::Result<Option<bool>> {
        Ok(self
            .conn
            .query_row(
                "SELECT confirmed_at IS NOT NULL FROM subscribers
                 WHERE token = ?1 AND unsubscribed_at IS NULL",
                [token],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Changes what the holder of `token` follows and how often; false if there is no such
    /// subscriber (or they have left).
    pub fn update_preferences(
        &mut self,
        token: &str,
        keywords: &[String],
        frequency: Frequency,
    ) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "UPDATE subscribers SET keywords_json = ?2, frequency = ?3
             WHERE token = ?1 AND unsubscribed_at IS NULL",
            params![token, serde_json::to_string(keywords)?, frequency.as_str()],
        )? > 0)
    }

    /// Deletes sign-ups never confirmed that were made before `before`, with their unsent
    /// confirmation emails; returns how many.
    pub fn prune_unconfirmed(&mut self, before: DateTime<Utc>) -> anyhow::Result<usize> {
        let tx = self.conn.transaction()?;
        let ids: Vec<i64> = tx
            .prepare(
                "SELECT id FROM subscribers
                 WHERE confirmed_at IS NULL AND unsubscribed_at IS NULL AND created_at < ?1",
            )?
            .query_map([before.to_rfc3339()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        // Tables added by later migrations that refer to subscribers.
        let referring: Vec<String> = tx
            .prepare(
                "SELECT m.name FROM sqlite_master m, pragma_foreign_key_list(m.name) f
                 WHERE m.type = 'table' AND f.\"table\" = 'subscribers' AND f.\"from\" = 'subscriber_id'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            // digest_items before alerts: an item refers to its alert.
            for table in ["digest_items"].into_iter().chain(
                referring
                    .iter()
                    .map(String::as_str)
                    .filter(|t| *t != "digest_items"),
            ) {
                tx.execute(
                    &format!(
                        "DELETE FROM \"{}\" WHERE subscriber_id = ?1",
                        table.replace('"', "")
                    ),
                    [id],
                )?;
            }
            tx.execute("DELETE FROM subscribers WHERE id = ?1", [id])?;
        }
        tx.execute(
            "DELETE FROM web_signups WHERE created_at < ?1",
            [before.to_rfc3339()],
        )?;
        tx.commit()?;
        Ok(ids.len())
    }
}
