-- The raw-SQL reference that scripts/load.sh measures the service against:
-- the tables a straightforward implementation of issue and verify would
-- use, in a schema of their own so that the pgbench scripts beside this
-- file (reference_issue.sql, reference_verify.sql) never touch the
-- service's tables. This SQL lives beside the load tool, not in
-- migrations/ or the store, because it is part of the benchmark: the
-- service never runs it.
--
--   psql -v recipients=1000000 -f reference_schema.sql URL
--
-- The tables mirror the service's codes and delivery_jobs (keys, indexes,
-- row sizes) so that the difference measured is the service's work, not
-- a thinner schema.
\set ON_ERROR_STOP on

DROP SCHEMA IF EXISTS ref CASCADE;
CREATE SCHEMA ref;

-- The live code per (purpose, recipient); issuing replaces it.
CREATE TABLE ref.codes (
  purpose       text NOT NULL,
  recipient     text NOT NULL,
  id            uuid NOT NULL,
  code_hash     bytea,
  attempts_left integer NOT NULL,
  created_at    timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (purpose, recipient)
);
CREATE UNIQUE INDEX ON ref.codes (id);
CREATE INDEX ON ref.codes (expires_at);

-- The outbox, one row per issued code; its recent rows per recipient are
-- what the issue rate limit counts.
CREATE TABLE ref.outbox (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code_id    uuid NOT NULL UNIQUE,
  purpose    text NOT NULL,
  recipient  text NOT NULL,
  state      text NOT NULL DEFAULT 'queued',
  payload    bytea,
  created_at timestamptz NOT NULL
);
CREATE INDEX ON ref.outbox (recipient, created_at);
CREATE INDEX ON ref.outbox (created_at) WHERE state = 'queued';

-- A live code for every recipient, for reference_verify.sql to guess on
-- (the service's verify runs likewise guess on live codes).
INSERT INTO ref.codes
SELECT 'login', 'u' || n || '@bench.example', gen_random_uuid(),
       sha256(int4send(n)), 5, now(), now() + interval '1 hour'
FROM generate_series(0, :recipients - 1) AS n;
VACUUM ANALYZE ref.codes;
VACUUM ANALYZE ref.outbox;
