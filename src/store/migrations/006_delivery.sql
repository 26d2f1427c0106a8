-- 006: confirmation tokens fresh for every sign-up and expiring; bounce counts and suspension.
-- The link key stays in `secrets` ('links'): every process reads it from here, so
-- `pqwatch keys rotate` (or deleting the row) takes effect everywhere at once.

CREATE TABLE confirmations (
    token         TEXT    PRIMARY KEY,     -- 128 random bits, hex; signed in the confirm link
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    created_at    TEXT    NOT NULL,
    expires_at    TEXT    NOT NULL,
    used_at       TEXT                      -- confirmed, superseded by an unsubscribe, or spent
);
CREATE INDEX confirmations_subscriber ON confirmations (subscriber_id);

-- Confirmations already sent (signed over the subscriber's own token) keep working for a week.
INSERT INTO confirmations (token, subscriber_id, created_at, expires_at)
SELECT token, id, created_at, strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, '+7 days')
FROM subscribers WHERE confirmed_at IS NULL AND unsubscribed_at IS NULL;

-- Permanent failures (5xx) in a row for this address; reset by a delivery.
ALTER TABLE subscribers ADD COLUMN bounces INTEGER NOT NULL DEFAULT 0;
-- Set when `[mail] suspend_after_bounces` is reached: nothing is sent until the address is
-- confirmed again or an administrator reactivates it.
ALTER TABLE subscribers ADD COLUMN suspended_at TEXT;
