-- Schema of a custody log in PostgreSQL.
--
-- Open runs this file once, in the transaction that creates the schema, and
-- then inserts the rows of schema_version (schemaVersion in postgres.go),
-- head and lease. Any change here must bump schemaVersion: Open refuses a
-- database of another version. The tables are created unqualified, in the
-- first schema of the connection's search_path.
--
-- Only portable SQL: plain tables, BIGINT, INTEGER, TEXT, BYTEA, TIMESTAMPTZ,
-- PRIMARY KEY, UNIQUE, CHECK and ordinary indexes (see docs/postgres.md).

-- One row: the version of this schema the database was created with.
CREATE TABLE schema_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);

-- One row: the size and root of the latest checkpoint (size -1 and an empty
-- root while the log is empty). Append advances it with a compare-and-swap
-- (UPDATE head ... WHERE size = prev AND root = prev) first thing in its
-- transaction, so concurrent writers, in any process, queue on this row
-- and all but one find it changed.
CREATE TABLE head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL CHECK (size >= -1),
    root BYTEA   NOT NULL CHECK (length(root) IN (0, 32))
);

-- The log's leaves. idx is the leaf index; identity de-duplicates
-- submissions (UNIQUE: a second entry with the same identity is refused by
-- the database); leaf_hash is SHA-256(0x00 || data); data is the exact leaf.
CREATE TABLE entries (
    idx       BIGINT PRIMARY KEY CHECK (idx >= 0),
    identity  BYTEA  NOT NULL UNIQUE CHECK (length(identity) = 32),
    leaf_hash BYTEA  NOT NULL CHECK (length(leaf_hash) = 32),
    sample    TEXT   NOT NULL,
    data      BYTEA  NOT NULL
);

-- ByLeafHash: the first index of a leaf hash.
CREATE INDEX entries_leaf_hash ON entries (leaf_hash, idx);

-- Sample: the indexes of a sample, in order.
CREATE INDEX entries_sample ON entries (sample, idx);

-- Hash tiles of c2sp.org/tlog-tiles (height 8): the newest data of tile
-- (level, idx), 1 to 256 hashes.
CREATE TABLE tiles (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 255),
    idx   BIGINT  NOT NULL CHECK (idx >= 0),
    data  BYTEA   NOT NULL CHECK (length(data) BETWEEN 32 AND 8192 AND length(data) % 32 = 0),
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints by tree size; the latest is the one of the largest size.
CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY CHECK (size >= 0),
    root BYTEA  NOT NULL CHECK (length(root) = 32),
    note BYTEA  NOT NULL
);

-- One row: the sequencer lease of servers sharing this database (an empty
-- holder when nobody holds it). Expiry is judged by the database's now().
CREATE TABLE lease (
    id      INTEGER     PRIMARY KEY CHECK (id = 1),
    holder  TEXT        NOT NULL,
    addr    TEXT        NOT NULL,
    expires TIMESTAMPTZ NOT NULL,
    epoch   BIGINT      NOT NULL CHECK (epoch >= 0)
);
