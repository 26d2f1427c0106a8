-- 004: secrets the database keeps for itself, such as the key that signs the links in emails.
-- Deleting the row makes every link already sent invalid; a new key is made on the next start.

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
