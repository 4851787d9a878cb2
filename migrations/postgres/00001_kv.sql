-- The key/value table and its store-wide version counter (Postgres).
--
-- Keys are bytea, compared bytewise whatever the database's collation.
-- updated_at is Unix nanoseconds, passed from Go. Every write takes its
-- version from the kv_version sequence inside the writing statement, so
-- versions never repeat, also across a delete and re-create of a key.
-- CACHE 1 (the default, spelled out) matters: with a larger cache each
-- session would hand out its own block and versions would stop growing in
-- the order writes happen.

-- +goose Up
CREATE TABLE kv (
    key        bytea  PRIMARY KEY,
    value      bytea  NOT NULL,
    version    bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE SEQUENCE kv_version CACHE 1;

-- +goose Down
DROP SEQUENCE kv_version;
DROP TABLE kv;
