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

-- The log's leaves. idx is the leaf index (entries are inserted in idx
-- order, so the primary key only ever grows at its right edge); identity
-- de-duplicates submissions; leaf_hash is SHA-256(0x00 || data); data is
-- the exact leaf.
--
-- There is deliberately no index on identity, leaf_hash or sample (and no
-- UNIQUE constraint, which would be one): their keys are random, so every
-- new entry would dirty about one page of each such B-tree. Each Store
-- keeps those lookups in a local on-disk index derived from this table
-- (index.go), and enforces the uniqueness of identities itself in Append,
-- under the lock of the head row. (Schema version 1 had them; Open drops
-- them.)
CREATE TABLE entries (
    idx       BIGINT PRIMARY KEY CHECK (idx >= 0),
    identity  BYTEA  NOT NULL CHECK (length(identity) = 32),
    leaf_hash BYTEA  NOT NULL CHECK (length(leaf_hash) = 32),
    sample    TEXT   NOT NULL,
    data      BYTEA  NOT NULL
);

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

-- Aggregates derived from the log (such as the per-region counts of
-- package stats), saved now and then with the tree size they cover, so
-- that a restart reads only the entries after it (aggregates.go).
CREATE TABLE aggregates (
    name TEXT   PRIMARY KEY,
    size BIGINT NOT NULL CHECK (size >= 0),
    data BYTEA  NOT NULL
);

-- The node tiles of the verifiable sample index (package sampleindex,
-- samplemap.go): derived data, the map of the first sample_map.size
-- entries, written by the sequencer now and then off the commit path. id
-- is the tile's storage key (sampleindex.TileID.Key), size the map size
-- the tile was written at. (Added in schema version 3; Open migrates
-- versions 1 and 2.)
CREATE TABLE sample_tiles (
    id   BYTEA  PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 33),
    size BIGINT NOT NULL CHECK (size >= 0),
    data BYTEA  NOT NULL
);

-- One row: the number of log entries the stored sample index tiles cover.
CREATE TABLE sample_map (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL CHECK (size >= 0)
);
INSERT INTO sample_map (id, size) VALUES (1, 0);
