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
    /// Permanent failures (5xx) in a row for this address; a delivery resets it.
    pub bounces: i64,
    /// Suspended after `[mail] suspend_after_bounces` permanent failures: gets nothing until
    /// confirmed again or reactivated (`pqwatch subscribers reactivate`).
    pub suspended: bool,
    pub suspended_at: Option<String>,
    #[serde(skip)]
    pub token: String,
}

/// What a confirm link did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The holder is confirmed (again), or for a link not yet used, can be: their address and
    /// their own (unsubscribe and manage) token.
    Yes { email: String, token: String },
    /// A spent link of an address that is confirmed and still subscribed.
    Already,
    /// A real link, past its `[mail] confirm_link_days`.
    Expired,
    /// Unknown, already used, or spent by an unsubscribe.
    Unknown,
}

/// What a permanent failure did to its subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounced {
    pub bounces: i64,
    /// This failure reached the limit: the subscriber is now suspended.
    pub suspended: bool,
}

/// An alert due to be sent, with its recipient.
#[derive(Clone, Debug)]
pub struct DueAlert {
    pub id: i64,
    /// `confirmation`, `instant` or `digest`.
    pub kind: String,
    pub message_id: String,
    pub email: String,
    pub name: String,
    pub token: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attempts: i64,
    /// When it was queued: temporary failures are retried until `[mail] give_up_after_hours`
    /// after this.
    pub created_at: String,
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
     include_no_figures, confirmed_at, created_at, token, bounces, suspended_at";

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
        bounces: r.get(11)?,
        suspended: r.get::<_, Option<String>>(12)?.is_some(),
        suspended_at: r.get(12)?,
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
                     confirmed_at = coalesce(?8, ?9), unsubscribed_at = NULL,
                     bounces = CASE WHEN ?9 IS NOT NULL OR ?10 THEN 0 ELSE bounces END,
                     suspended_at = CASE WHEN ?9 IS NOT NULL OR ?10 THEN NULL ELSE suspended_at END
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
                    confirmed_at,
                    unsubscribed.is_some()
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
             WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL
               AND suspended_at IS NULL ORDER BY id"
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
    /// Adds or updates a subscriber; returns its id and whether a confirmation email was
    /// queued. One is queued, with a new `confirm_token` valid until `expires`, whenever the
    /// subscriber is not confirmed or is suspended (a returning address always is):
    /// `confirmation(id, confirm_token)` renders it and names its Message-ID, which must be new.
    pub fn add_subscriber(
        &mut self,
        s: &NewSubscriber,
        token: &str,
        (confirm_token, expires): (&str, DateTime<Utc>),
        confirmation: impl FnOnce(i64, &str) -> (String, Rendered),
        now: DateTime<Utc>,
    ) -> anyhow::Result<(i64, bool)> {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        let (id, _) = upsert(&tx, s, token, &now)?;
        let needs_confirming: bool = tx.query_row(
            "SELECT confirmed_at IS NULL OR suspended_at IS NOT NULL FROM subscribers WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let queued = if needs_confirming {
            tx.execute(
                "INSERT INTO confirmations (token, subscriber_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![confirm_token, id, now, expires.to_rfc3339()],
            )?;
            let (message_id, r) = confirmation(id, confirm_token);
            insert_alert(&tx, id, "confirmation", &message_id, &r, &now)?
        } else {
            false
        };
        tx.commit()?;
        Ok((id, queued))
    }

    /// Lifts a suspension (and clears the bounce count); false if the address is not subscribed.
    pub fn reactivate(&mut self, email: &str) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "UPDATE subscribers SET suspended_at = NULL, bounces = 0
             WHERE email = ?1 AND unsubscribed_at IS NULL",
            [email],
        )? > 0)
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
            // A confirm link from before can never bring the address back.
            tx.execute(
                "UPDATE confirmations SET used_at = ?2 WHERE subscriber_id = ?1 AND used_at IS NULL",
                params![id, now],
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

    /// Confirms the holder of a confirmation token (lifting any suspension) and spends every
    /// confirmation token of theirs: a link works once, and only until it expires.
    pub fn confirm_token(&mut self, token: &str, now: DateTime<Utc>) -> anyhow::Result<Confirmed> {
        let now_s = now.to_rfc3339();
        let id = match self.confirm_link_state(token, now)? {
            (Confirmed::Yes { .. }, Some(id)) => id,
            (other, _) => return Ok(other),
        };
        let tx = self.conn.transaction()?;
        let (email, own): (String, String) = tx.query_row(
            "UPDATE subscribers SET confirmed_at = coalesce(confirmed_at, ?2),
                 suspended_at = NULL, bounces = 0
             WHERE id = ?1 RETURNING email, token",
            params![id, now_s],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "UPDATE confirmations SET used_at = ?2 WHERE subscriber_id = ?1 AND used_at IS NULL",
            params![id, now_s],
        )?;
        tx.commit()?;
        Ok(Confirmed::Yes { email, token: own })
    }

    /// What a confirm link would do now, changing nothing (for the page a GET shows), and its
    /// subscriber's id.
    pub fn confirm_link_state(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Confirmed, Option<i64>)> {
        let found: Option<(i64, String, bool, String, String)> = self
            .conn
            .query_row(
                "SELECT c.subscriber_id, c.expires_at, c.used_at IS NOT NULL, s.email, s.token
                 FROM confirmations c JOIN subscribers s ON s.id = c.subscriber_id
                 WHERE c.token = ?1 AND s.unsubscribed_at IS NULL",
                [token],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((id, expires, used, email, own)) = found else {
            return Ok((Confirmed::Unknown, None));
        };
        let confirmed: bool = self.conn.query_row(
            "SELECT confirmed_at IS NOT NULL AND suspended_at IS NULL FROM subscribers WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if used {
            return Ok((
                if confirmed {
                    Confirmed::Already
                } else {
                    Confirmed::Unknown
                },
                Some(id),
            ));
        }
        if DateTime::parse_from_rfc3339(&expires).map_or(true, |e| e <= now) {
            return Ok((Confirmed::Expired, Some(id)));
        }
        Ok((Confirmed::Yes { email, token: own }, Some(id)))
    }

    /// The newest confirm token of a subscribed address, if any (for tests and administrators).
    pub fn latest_confirm_token(&self, email: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT c.token FROM confirmations c JOIN subscribers s ON s.id = c.subscriber_id
                 WHERE s.email = ?1 AND s.unsubscribed_at IS NULL
                 ORDER BY c.created_at DESC, c.rowid DESC LIMIT 1",
                [email],
                |r| r.get(0),
            )
            .optional()?)
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
                    a.body_html, a.attempts, a.created_at, a.kind
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
                created_at: r.get(9)?,
                kind: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Written only after the server accepted the message; the address's run of bounces ends.
    pub fn mark_sent(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE alerts SET status = 'sent', sent_at = ?2, attempts = attempts + 1,
                 last_error = NULL WHERE id = ?1",
            params![id, now.to_rfc3339()],
        )?;
        tx.execute(
            "UPDATE subscribers SET bounces = 0
             WHERE id = (SELECT subscriber_id FROM alerts WHERE id = ?1) AND bounces > 0",
            [id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A permanent failure (5xx) of alert `id`: it fails, its address's run of bounces grows,
    /// and at `suspend_after` the subscriber is suspended and their other pending alerts fail.
    pub fn mark_bounce(
        &mut self,
        id: i64,
        error: &str,
        suspend_after: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Bounced> {
        let now = now.to_rfc3339();
        let tx = self.conn.transaction()?;
        let sub: i64 = tx.query_row(
            "UPDATE alerts SET status = 'failed', attempts = attempts + 1, last_error = ?2
             WHERE id = ?1 RETURNING subscriber_id",
            params![id, error],
            |r| r.get(0),
        )?;
        let (bounces, already): (i64, bool) = tx.query_row(
            "UPDATE subscribers SET bounces = bounces + 1 WHERE id = ?1
             RETURNING bounces, suspended_at IS NOT NULL",
            [sub],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let suspended = !already && bounces >= i64::from(suspend_after);
        if suspended {
            tx.execute(
                "UPDATE subscribers SET suspended_at = ?2 WHERE id = ?1",
                params![sub, now],
            )?;
            tx.execute(
                "UPDATE alerts SET status = 'failed', last_error = 'subscriber suspended: ' || ?2
                 WHERE subscriber_id = ?1 AND status = 'pending'",
                params![sub, error],
            )?;
        }
        tx.commit()?;
        Ok(Bounced { bounces, suspended })
    }

    /// Pending alerts queued before `cutoff`: how many, and when the oldest was queued.
    pub fn overdue_alerts(&self, cutoff: DateTime<Utc>) -> anyhow::Result<(i64, Option<String>)> {
        Ok(self.conn.query_row(
            "SELECT count(*), min(created_at) FROM alerts
             WHERE status = 'pending' AND created_at < ?1",
            [cutoff.to_rfc3339()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// When the next pending alert falls due, if any is pending.
    pub fn next_due_at(&self) -> anyhow::Result<Option<String>> {
        Ok(self.conn.query_row(
            "SELECT min(next_attempt_at) FROM alerts WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?)
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
             WHERE i.alert_id IS NULL AND s.unsubscribed_at IS NULL AND s.suspended_at IS NULL
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
