-- 003: subscribers and the outbox. An alert is queued in the transaction that records the
-- changes it reports, and marked sent only after the server has accepted it.

CREATE TABLE subscribers (
    id                 INTEGER PRIMARY KEY,
    email              TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    keywords_json      TEXT    NOT NULL,
    bodies_json        TEXT    NOT NULL,
    houses_json        TEXT    NOT NULL,
    frequency          TEXT    NOT NULL CHECK (frequency IN ('instant', 'daily')),
    include_no_figures INTEGER NOT NULL,
    confirmed_at       TEXT,            -- null: gets nothing but the confirmation email
    token              TEXT    NOT NULL UNIQUE, -- unguessable, for unsubscribe links
    created_at         TEXT    NOT NULL,
    unsubscribed_at    TEXT
);

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('confirmation', 'instant', 'digest')),
    message_id      TEXT    NOT NULL UNIQUE, -- stable: one per subscriber and change set
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    sent_at         TEXT
);
CREATE INDEX alerts_due ON alerts (status, next_attempt_at);

-- Answers waiting for a daily subscriber's digest.
CREATE TABLE digest_items (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    version_id    INTEGER NOT NULL REFERENCES answer_versions (id),
    content_json  TEXT    NOT NULL,
    date_answered TEXT,
    alert_id      INTEGER REFERENCES alerts (id),
    created_at    TEXT    NOT NULL,
    UNIQUE (subscriber_id, version_id)
);
