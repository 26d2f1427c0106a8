-- 007: records that could not be read. A listed record that fails to read (no numeric id, a
-- field of the wrong type, an impossible or implausible date, a body that is not the contract's
-- JSON) is held: retried next pass, the cursor kept before its day. Each pass it fails adds an
-- attempt; after [watch] quarantine_after attempts, or at once when it was refused for its size
-- ([api] max_body_bytes, [watch] max_answer_bytes), it is quarantined: kept here as the API
-- sent it, listed by `pqwatch answers quarantined` and `status`, no longer fetched while its
-- list fingerprint is unchanged, and no longer holding the cursor. A changed fingerprint is
-- tried afresh; a record that is then stored removes its row.

CREATE TABLE quarantine (
    kind           TEXT    NOT NULL CHECK (kind IN ('question', 'statement')),
    -- "id:123" for a record with a numeric id; otherwise "fp:" and its list fingerprint.
    record_key     TEXT    NOT NULL,
    api_id         INTEGER,
    uin            TEXT,
    house          TEXT,
    -- The listed day (answered, corrected or made), when it could be read.
    day            TEXT,
    -- Of the list record: a different one means the API changed the record, so try again.
    fingerprint    TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    -- The record as the API sent it: the detail when that was read, else the list record.
    raw_json       TEXT    NOT NULL,
    -- Passes that failed to read it with this fingerprint.
    attempts       INTEGER NOT NULL,
    first_failed_at TEXT   NOT NULL,
    last_failed_at TEXT    NOT NULL,
    -- NULL while only held.
    quarantined_at TEXT,
    PRIMARY KEY (kind, record_key)
);
CREATE INDEX quarantine_by_uin ON quarantine (kind, uin) WHERE api_id IS NULL;
