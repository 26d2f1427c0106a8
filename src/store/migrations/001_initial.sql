-- 001: ingest. Every matched item, every version of its answer, what the poller has seen, and
-- the cursors that say how far it has got.

CREATE TABLE documents (
    id                  INTEGER PRIMARY KEY,
    kind                TEXT    NOT NULL CHECK (kind IN ('question', 'statement')),
    api_id              INTEGER NOT NULL,
    uin                 TEXT,
    house               TEXT,
    heading             TEXT,
    question_text       TEXT,
    date_tabled         TEXT,
    date_answered       TEXT,
    date_corrected      TEXT,
    is_holding          INTEGER NOT NULL,
    is_correction       INTEGER NOT NULL,
    answering_body_id   INTEGER,
    answering_body_name TEXT,
    asking_member       TEXT,
    answering_member    TEXT,
    matched_keywords    TEXT    NOT NULL, -- JSON array of the watch phrases that matched
    raw_json            TEXT    NOT NULL, -- the record exactly as the API sent it (all fields)
    first_seen_at       TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    UNIQUE (kind, api_id)
);
CREATE INDEX documents_by_date_answered ON documents (date_answered);

-- One row per distinct content of an answer: a holding answer, its replacement, a correction.
CREATE TABLE answer_versions (
    id             INTEGER PRIMARY KEY,
    document_id    INTEGER NOT NULL REFERENCES documents (id),
    version        INTEGER NOT NULL,
    body_html      TEXT    NOT NULL,
    content_hash   TEXT    NOT NULL,
    is_holding     INTEGER NOT NULL,
    is_correction  INTEGER NOT NULL,
    date_answered  TEXT,
    date_corrected TEXT,
    stored_at      TEXT    NOT NULL,
    UNIQUE (document_id, version)
);

-- Every item the list endpoint showed us, matched or not, with a fingerprint of its list record:
-- an unchanged fingerprint means no detail request is needed.
CREATE TABLE seen (
    kind        TEXT    NOT NULL,
    api_id      INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    matched     INTEGER NOT NULL,
    seen_at     TEXT    NOT NULL,
    PRIMARY KEY (kind, api_id)
);

-- The last UK day fully seen, per kind. Never moved past an item that was not stored.
CREATE TABLE cursors (
    kind       TEXT PRIMARY KEY,
    day        TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Progress of each backfill range, so an interrupted backfill resumes where it stopped.
CREATE TABLE backfills (
    kind         TEXT NOT NULL,
    from_day     TEXT NOT NULL,
    to_day       TEXT NOT NULL,
    done_through TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (kind, from_day, to_day)
);

-- One row per pass, for `pqwatch status`.
CREATE TABLE polls (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    mode        TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    report_json TEXT NOT NULL,
    error       TEXT
);
