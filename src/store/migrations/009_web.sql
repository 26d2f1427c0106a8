-- 009: the web front. Indexes its pages need to cost the same with 10,000 statistics as with
-- ten, and weekly digests.

CREATE INDEX IF NOT EXISTS changes_by_observation ON changes (observation_id);
CREATE INDEX IF NOT EXISTS changes_by_statistic ON changes (statistic_id, id);
CREATE INDEX IF NOT EXISTS statistic_sources_by_document ON statistic_sources (document_id);
CREATE INDEX IF NOT EXISTS observations_by_source ON observations (source_id);

-- Subscribers may take a weekly digest. Widening a CHECK changes no stored row, so it is done
-- in place (SQLite's documented procedure for dropping or loosening a constraint) rather than
-- by rebuilding a table that alerts and digest items refer to.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (frequency IN (''instant'', ''daily''))',
                          'CHECK (frequency IN (''instant'', ''daily'', ''weekly''))')
 WHERE type = 'table' AND name = 'subscribers';
PRAGMA writable_schema = RESET;

-- When each sign-up's confirmation was last sent from the web front: the per-address limit.
CREATE TABLE web_signups (
    id         INTEGER PRIMARY KEY,
    email      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX web_signups_by_email ON web_signups (email, created_at);
