-- Schema of a custody log in SQLite.
--
-- Open runs this file once, in the transaction that creates a new database,
-- and then records schemaVersion (sqlite.go) in schema_version. Any change
-- here must bump schemaVersion: Open refuses a database of another version.

-- One row: the version of this schema the database was created with.
CREATE TABLE schema_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;

-- The log's leaves. idx is the leaf index (the rowid, so entries are stored
-- in log order and every insert goes to the right edge of the table).
-- identity de-duplicates submissions; leaf_hash is SHA-256(0x00 || data);
-- data is the exact leaf.
--
-- There is deliberately no index on identity, leaf_hash or sample (and no
-- UNIQUE constraint, which would be one): their keys are random, so every
-- new entry would dirty about one page of each such B-tree, and each commit
-- would write those pages to the WAL. The Store keeps in-memory hash indexes
-- instead, rebuilt by Open, and enforces the uniqueness of identities itself
-- (see the package documentation).
CREATE TABLE entries (
    idx       INTEGER PRIMARY KEY CHECK (idx >= 0),
    identity  BLOB    NOT NULL CHECK (length(identity) = 32),
    leaf_hash BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
    sample    TEXT    NOT NULL,
    data      BLOB    NOT NULL
) STRICT;

-- Hash tiles of c2sp.org/tlog-tiles (height 8): the newest data of tile
-- (level, idx), 1 to 256 hashes. A rowid table rather than WITHOUT ROWID:
-- full tiles are 8 KiB, far above the row size WITHOUT ROWID suits.
CREATE TABLE tiles (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 255),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    data  BLOB    NOT NULL CHECK (length(data) BETWEEN 32 AND 8192 AND length(data) % 32 = 0),
    PRIMARY KEY (level, idx)
) STRICT;

-- Signed checkpoints by tree size; the latest is the one of the largest size.
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY CHECK (size >= 0),
    root BLOB    NOT NULL CHECK (length(root) = 32),
    note BLOB    NOT NULL
) STRICT;

-- Aggregates derived from the log (such as the per-region counts of
-- package stats), saved now and then with the tree size they cover, so
-- that a restart reads only the entries after it (aggregates.go). The
-- table is optional: a database made before it existed gets it at the
-- first save (CREATE TABLE IF NOT EXISTS, the statement aggregates.go
-- runs), so adding it did not change the schema version.
CREATE TABLE IF NOT EXISTS aggregates (
    name TEXT    PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    data BLOB    NOT NULL
) STRICT;

-- The node tiles of the verifiable sample index (package sampleindex,
-- samplemap.go): derived data, the map of the first sample_map.size
-- entries, written by the sequencer now and then off the commit path. id
-- is the tile's storage key (sampleindex.TileID.Key), size the map size
-- the tile was written at. A rowid table with a unique index on id rather
-- than WITHOUT ROWID: tiles are up to a few KiB, which would spill to
-- overflow pages in an index B-tree. (Added in schema version 3; Open
-- migrates version 2.)
CREATE TABLE sample_tiles (
    id   BLOB    NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 33),
    size INTEGER NOT NULL CHECK (size >= 0),
    data BLOB    NOT NULL
) STRICT;

-- One row: the number of log entries the stored sample index tiles cover.
CREATE TABLE sample_map (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL CHECK (size >= 0)
) STRICT;
INSERT INTO sample_map (id, size) VALUES (1, 0);
