-- 008: what backfills have fully stored, as ranges of UK days per kind, so that any later
-- backfill (whatever its own range, and walked newest first) skips the days already covered.
-- Overlapping and adjacent ranges are merged as they are added.

CREATE TABLE backfill_coverage (
    kind       TEXT NOT NULL,
    first_day  TEXT NOT NULL,
    last_day   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, first_day)
);

-- The old per-range progress (oldest first: fully stored from from_day through done_through).
INSERT INTO backfill_coverage (kind, first_day, last_day, updated_at)
    SELECT kind, from_day, done_through, updated_at FROM backfills
    WHERE done_through IS NOT NULL AND done_through >= from_day;

DROP TABLE backfills;
