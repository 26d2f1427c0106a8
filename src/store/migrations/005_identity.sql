-- 005: statistic identity by series. A statistic is one measure (with optional dimensions) over
-- periods; it keeps a title a person would write, the caption as its description, the label of
-- its measure, and the words that matching weighs (topic: what the question and caption are
-- about; scope: qualifiers such as "youth" or "agency" that separate two statistics). Every
-- observation keeps the measure label it was published under, so a change reads alone.
-- Existing statistics keep their titles; their empty topic and scope mean "unknown" to matching.

ALTER TABLE statistics ADD COLUMN description   TEXT NOT NULL DEFAULT '';
ALTER TABLE statistics ADD COLUMN measure_label TEXT NOT NULL DEFAULT '';
ALTER TABLE statistics ADD COLUMN topic_json    TEXT NOT NULL DEFAULT '[]';
ALTER TABLE statistics ADD COLUMN scope_json    TEXT NOT NULL DEFAULT '[]';
ALTER TABLE observations ADD COLUMN measure     TEXT NOT NULL DEFAULT '';
