-- 002: statistics. Every extracted figure is filed under a statistic, with the table it came
-- from (a source), and every new, revised or confirmed figure is a change.

CREATE TABLE statistics (
    id             INTEGER PRIMARY KEY,
    title          TEXT NOT NULL,
    answering_body TEXT NOT NULL,
    unit           TEXT NOT NULL,
    measure_json   TEXT NOT NULL, -- the measure words, for matching
    dims_json      TEXT NOT NULL, -- every dimension value seen
    created_at     TEXT NOT NULL
);

-- Posting lists for candidate lookup, and how many statistics use each word, so a lookup reads
-- only the rarest words' lists and stays flat as statistics grow.
CREATE TABLE statistic_words (
    word         TEXT    NOT NULL,
    statistic_id INTEGER NOT NULL REFERENCES statistics (id),
    PRIMARY KEY (word, statistic_id)
) WITHOUT ROWID;
CREATE TABLE word_counts (
    word TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

-- One table of one answer version filed under one statistic, with why.
CREATE TABLE statistic_sources (
    id            INTEGER PRIMARY KEY,
    statistic_id  INTEGER NOT NULL REFERENCES statistics (id),
    document_id   INTEGER NOT NULL REFERENCES documents (id),
    version_id    INTEGER NOT NULL REFERENCES answer_versions (id),
    table_index   INTEGER NOT NULL,
    caption       TEXT,
    reason_json   TEXT    NOT NULL,
    is_correction INTEGER NOT NULL,
    created_at    TEXT    NOT NULL
);
CREATE INDEX statistic_sources_by_statistic ON statistic_sources (statistic_id);

CREATE TABLE observations (
    id           INTEGER PRIMARY KEY,
    statistic_id INTEGER NOT NULL REFERENCES statistics (id),
    source_id    INTEGER NOT NULL REFERENCES statistic_sources (id),
    cell_key     TEXT    NOT NULL,
    period_key   TEXT    NOT NULL,
    period_label TEXT,
    row_json     TEXT    NOT NULL,
    column_json  TEXT    NOT NULL,
    grid_row     INTEGER NOT NULL,
    grid_col     INTEGER NOT NULL,
    raw          TEXT    NOT NULL,
    value        REAL,
    kind         TEXT    NOT NULL
);
CREATE INDEX observations_by_statistic ON observations (statistic_id, id);

CREATE TABLE changes (
    id                   INTEGER PRIMARY KEY,
    statistic_id         INTEGER NOT NULL REFERENCES statistics (id),
    observation_id       INTEGER NOT NULL REFERENCES observations (id),
    change               TEXT    NOT NULL CHECK (change IN ('new', 'revised', 'confirmed')),
    prior_observation_id INTEGER REFERENCES observations (id),
    is_correction        INTEGER NOT NULL,
    created_at           TEXT    NOT NULL
);
CREATE INDEX changes_by_time ON changes (created_at, id);
