//! Subscribers and the outbox: adding, importing and removing subscribers, queuing alerts and
//! digest items inside a pass's transaction, and the sent, retry and failed marks.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{Recorder, Store};
use crate::notify::render::Rendered;
use crate::subscribers::{Frequency, NewSubscriber};

/// A stored subscriber.
#[derive(Clone, Debug, Serialize)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub keywords: Vec<String>,
    pub bodies: Vec<i64>,
    pub houses: Vec<String>,
    pub frequency: Frequency,
    pub include_no_figures: bool,
    pub confirmed: bool,
    pub confirmed_at: Option<String>,
    pub created_at: String,
    #[serde(skip)]
    pub token: String,
}

/// An alert due to be sent, with its recipient.
#[derive(Clone, Debug)]
pub struct DueAlert {
    pub id: i64,
    pub message_id: String,
    pub email: String,
    pub name: String,
    pub token: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attempts: i64,
}

/// One line of `pqwatch alerts list`.
#[derive(Clone, Debug, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub email: String,
    pub kind: String,
    pub subject: String,
    pub message_id: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
}

const SUBSCRIBER_COLUMNS: &str =
    "id, email, name, keywords_json, bodies_json, houses_json, frequency,
     include_no_figures, confirmed_at, created_at, token";

fn subscriber(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriberRow> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let confirmed_at: Option<String> = r.get(8)?;
    Ok(SubscriberRow {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        keywords: serde_json::from_str(&json(3)?).unwrap_or_default(),
        bodies: serde_json::from_str(&json(4)?).unwrap_or_default(),
        houses: serde_json::from_str(&json(5)?).unwrap_or_default(),
        frequency: match r.get::<_, String>(6)?.as_str() {
            "daily" => Frequency::Daily,
            "weekly" => Frequency::Weekly,
            _ => Frequency::Instant,
        },
        include_no_figures: r.get(7)?,
        confirmed: confirmed_at.is_some(),
        confirmed_at,
        created_at: r.get(9)?,
        token: r.get(10)?,
    })
}

fn upsert(
    tx: &rusqlite::Transaction<'_>,
    s: &NewSubscriber,
    token: &str,
    now: &str,
) -> anyhow::Result<(i64, bool)> {
    let existing: Option<(i64, Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT id, confirmed_at, unsubscribed_at FROM subscribers WHERE email = ?1",
            [&s.email],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let confirmed_at = s.confirmed.then_some(now);
    let fields = params![
        s.email,
        s.name,
        serde_json::to_string(&s.keywords)?,
        serde_json::to_string(&s.bodies)?,
        serde_json::to_string(&s.houses)?,
        s.frequency.as_str(),
        s.include_no_figures,
        confirmed_at,
        now,
        token
    ];
    match existing {
        None => {
            tx.execute(
                "INSERT INTO subscribers (email, name, keywords_json, bodies_json, houses_json,
                     frequency, include_no_figures, confirmed_at, created_at, token)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                fields,
            )?;
            Ok((tx.last_insert_rowid(), true))
        }
        Some((id, was_confirmed, unsubscribed)) => {
            // Keeps an earlier confirmation; a returning subscriber starts afresh.
            let keep = if unsubscribed.is_some() {
                None
            } else {
                was_confirmed
            };
            tx.execute(
                "UPDATE subscribers SET name = ?2, keywords_json = ?3, bodies_json = ?4,
                     houses_json = ?5, frequency = ?6, include_no_figures = ?7,
                     confirmed_at = coalesce(?8, ?9), unsubscribed_at = NULL
                 WHERE id = ?1",
                params![
                    id,
                    s.name,
                    serde_json::to_string(&s.keywords)?,
                    serde_json::to_string(&s.bodies)?,
                    serde_json::to_string(&s.houses)?,
                    s.frequency.as_str(),
                    s.include_no_figures,
                    keep,
                    confirmed_at
                ],
            )?;
            Ok((id, unsubscribed.is_some()))
        }
    }
}

fn insert_alert(
    tx: &rusqlite::Transaction<'_>,
    subscriber: i64,
    kind: &str,
    message_id: &str,
    r: &Rendered,
    now: &str,
) -> anyhow::Result<bool> {
    Ok(tx
        .prepare_cached(
            "INSERT OR IGNORE INTO alerts (subscriber_id, kind, message_id, subject, body_text,
                 body_html, status, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7)",
        )?
        .execute(params![
            subscriber, kind, message_id, r.subject, r.text, r.html, now
        ])?
        > 0)
}

impl Recorder<'_, '_> {
    /// Confirmed subscribers who have not unsubscribed.
    pub fn active_subscribers(&self) -> anyhow::Result<Vec<SubscriberRow>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
             WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL ORDER BY id"
        ))?;
        let rows = stmt.query_map([], subscriber)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Queues an instant alert; a second with the same Message-ID is ignored.
    pub fn queue_alert(
        &self,
        subscriber: i64,
        message_id: &str,
        r: &Rendered,
        now: &str,
    ) -> anyhow::Result<bool> {
        insert_alert(self.tx, subscriber, "instant", message_id, r, now)
    }

    pub fn queue_digest_item(
        &self,
        subscriber: i64,
        version_id: i64,
        content_json: &str,
        date_answered: Option<&str>,
        now: &str,
    ) -> anyhow::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO digest_items (subscriber_id, version_id, content_json,
                     date_answered, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                subscriber,
                version_id,
                content_json,
                date_answered,
                now
            ])?;
        Ok(())
    }

    /// "House UIN (date)" and the official link of an earlier observation.
    pub fn observation_source(&self, observation: i64) -> anyhow::Result<(String, Option<String>)> {
        let (house, uin, date, tabled, kind): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<chrono::NaiveDate>,
            String,
        ) = self
            .tx
            .prepare_cached(
                "SELECT d.house, d.uin, d.date_answered, d.date_tabled, d.kind
                 FROM observations o JOIN statistic_sources s ON s.id = o.source_id
                      JOIN documents d ON d.id = s.document_id WHERE o.id = ?1",
            )?
            .query_row([observation], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
        let kind = crate::model::DocKind::parse(&kind).unwrap_or(crate::model::DocKind::Question);
        Ok((
            format!(
                "{} {} ({})",
                house.unwrap_or_default(),
                uin.as_deref().unwrap_or("-"),
                date.unwrap_or_default()
            ),
            crate::model::official_url(kind, tabled, uin.as_deref()),
        ))
    }
}

impl Store {
    /// Adds or updates a subscriber; returns its id and whether it needs a confirmation email.
    pub fn add_subscriber(
        &mut self,
        s: &NewSubscriber,
        token: &str,
        confirmation: impl FnOnce(i64, &str) -> (String, Rendered),
        now: DateTime<Utc>,
    ) -> anyhow::Result<(i64, bool)> {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        let (id, _) = upsert(&tx, s, token, &now)?;
        let (confirmed, stored_token): (bool, String) = tx.query_row(
            "SELECT confirmed_at IS NOT NULL, token FROM subscribers WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let queued = if confirmed {
            false
        } else {
            let (message_id, r) = confirmation(id, &stored_token);
            insert_alert(&tx, id, "confirmation", &message_id, &r, &now)?
        };
        tx.commit()?;
        Ok((id, queued))
    }

    /// Imports every subscriber in one transaction: all of them or none.
    pub fn import_subscribers(
        &mut self,
        list: &[(NewSubscriber, String)],
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        for (s, token) in list {
            upsert(&tx, s, token, &now).with_context(|| format!("importing {}", s.email))?;
        }
        tx.commit()?;
        Ok(list.len())
    }

    /// Marks a subscriber unsubscribed and drops their unsent alerts. False if unknown.
    pub fn unsubscribe(&mut self, email: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM subscribers WHERE email = ?1 AND unsubscribed_at IS NULL",
                [email],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            tx.execute(
                "UPDATE subscribers SET unsubscribed_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            tx.execute(
                "UPDATE alerts SET status = 'failed', last_error = 'unsubscribed'
                 WHERE subscriber_id = ?1 AND status = 'pending'",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(id.is_some())
    }

    /// Unsubscribes the holder of an unsubscribe token; returns their address.
    pub fn unsubscribe_token(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<String>> {
        let email: Option<String> = self
            .conn
            .query_row(
                "SELECT email FROM subscribers WHERE token = ?1 AND unsubscribed_at IS NULL",
                [token],
                |r| r.get(0),
            )
            .optional()?;
        match email {
            Some(e) => {
                self.unsubscribe(&e, now)?;
                Ok(Some(e))
            }
            None => Ok(None),
        }
    }

    /// Confirms the holder of a token; returns their address.
    pub fn confirm_token(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<String>> {
        let email: Option<String> = self
            .conn
            .query_row(
                "UPDATE subscribers SET confirmed_at = coalesce(confirmed_at, ?2)
                 WHERE token = ?1 AND unsubscribed_at IS NULL RETURNING email",
                params![token, now.to_rfc3339()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(email)
    }

    /// The current (not unsubscribed) subscriber with this address.
    pub fn subscriber(&self, email: &str) -> anyhow::Result<Option<SubscriberRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
                     WHERE email = ?1 AND unsubscribed_at IS NULL"
                ),
                [email],
                subscriber,
            )
            .optional()?)
    }

    pub fn subscribers(&self) -> anyhow::Result<Vec<SubscriberRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE unsubscribed_at IS NULL ORDER BY email"
        ))?;
        let rows = stmt.query_map([], subscriber)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pending alerts whose time has come, oldest first.
    pub fn due_alerts(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<DueAlert>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.message_id, s.email, s.name, s.token, a.subject, a.body_text,
                    a.body_html, a.attempts
             FROM alerts a JOIN subscribers s ON s.id = a.subscriber_id
             WHERE a.status = 'pending' AND a.next_attempt_at <= ?1
             ORDER BY a.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now.to_rfc3339(), limit as i64], |r| {
            Ok(DueAlert {
                id: r.get(0)?,
                message_id: r.get(1)?,
                email: r.get(2)?,
                name: r.get(3)?,
                token: r.get(4)?,
                subject: r.get(5)?,
                text: r.get(6)?,
                html: r.get(7)?,
                attempts: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Written only after the server accepted the message.
    pub fn mark_sent(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE alerts SET status = 'sent', sent_at = ?2, attempts = attempts + 1,
                 last_error = NULL WHERE id = ?1",
            params![id, now.to_rfc3339()],
        )?;
        Ok(())
    }

    pub fn mark_retry(
        &mut self,
        id: i64,
        error: &str,
        next: DateTime<Utc>,
        give_up: bool,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE alerts SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                 status = CASE WHEN ?4 THEN 'failed' ELSE 'pending' END WHERE id = ?1",
            params![id, error, next.to_rfc3339(), give_up],
        )?;
        Ok(())
    }

    pub fn alerts(&self, pending_only: bool) -> anyhow::Result<Vec<AlertRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT a.id, s.email, a.kind, a.subject, a.message_id, a.status, a.attempts,
                    a.created_at, a.sent_at, a.next_attempt_at, a.last_error
             FROM alerts a JOIN subscribers s ON s.id = a.subscriber_id
             WHERE NOT ?1 OR a.status = 'pending' ORDER BY a.id DESC",
        )?;
        let rows = stmt.query_map([pending_only], |r| {
            let status: String = r.get(5)?;
            let next: String = r.get(9)?;
            Ok(AlertRow {
                id: r.get(0)?,
                email: r.get(1)?,
                kind: r.get(2)?,
                subject: r.get(3)?,
                message_id: r.get(4)?,
                next_attempt_at: (status == "pending").then_some(next),
                status,
                attempts: r.get(6)?,
                created_at: r.get(7)?,
                sent_at: r.get(8)?,
                last_error: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Daily subscribers' answers not yet in a digest, newest answer first.
    pub fn pending_digest_items(&self) -> anyhow::Result<Vec<(i64, i64, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT i.subscriber_id, i.id, i.content_json FROM digest_items i
             JOIN subscribers s ON s.id = i.subscriber_id
             WHERE i.alert_id IS NULL AND s.unsubscribed_at IS NULL
             ORDER BY i.subscriber_id, i.date_answered DESC, i.id DESC",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Queues one digest and marks its items, in one transaction.
    pub fn queue_digest(
        &mut self,
        subscriber: i64,
        items: &[i64],
        message_id: &str,
        r: &Rendered,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        if insert_alert(&tx, subscriber, "digest", message_id, r, &now)? {
            let alert = tx.last_insert_rowid();
            for i in items {
                tx.execute(
                    "UPDATE digest_items SET alert_id = ?2 WHERE id = ?1",
                    params![i, alert],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// When the oldest pending alert was queued, and the last error among pending alerts.
    pub fn pending_summary(&self) -> anyhow::Result<(Option<String>, Option<String>)> {
        Ok(self.conn.query_row(
            "SELECT (SELECT min(created_at) FROM alerts WHERE status = 'pending'),
                    (SELECT last_error FROM alerts
                      WHERE status = 'pending' AND last_error IS NOT NULL
                      ORDER BY next_attempt_at DESC, id DESC LIMIT 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Counts of alerts by status, for status and tests.
    pub fn alert_counts(&self) -> anyhow::Result<std::collections::HashMap<String, i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, count(*) FROM alerts GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
