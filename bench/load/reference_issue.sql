-- pgbench script: IssueCode as a straightforward application would write
-- it in SQL, the reference scripts/load.sh compares the service's
-- IssueCode with. It lives beside the load tool, not in migrations/ or the
-- store, because it is part of the benchmark; the tables are
-- reference_schema.sql's, never the service's.
--
--   pgbench -n -M prepared -f reference_issue.sql -D recipients=1000000 \
--       -D issue_limit=1000000 -c 64 -j 2 -T 30 URL
--
-- Five statements, each a round trip: BEGIN, the rate-limit count over
-- the recipient's recent outbox rows, the code upsert, the outbox insert
-- (the code's mail, its payload about the size of the service's sealed
-- one), COMMIT. Over the limit it rolls back instead. Nothing drains this
-- outbox: the reference pays for no delivery.
\set n random(0, :recipients - 1)
BEGIN;
SELECT count(*) AS recent FROM ref.outbox
WHERE recipient = 'u' || :n || '@bench.example'
  AND created_at > now() - interval '1 hour' \gset
\if :recent < :issue_limit
INSERT INTO ref.codes AS c (purpose, recipient, id, code_hash, attempts_left,
                            created_at, expires_at)
VALUES ('login', 'u' || :n || '@bench.example', gen_random_uuid(),
        sha256(random()::text::bytea), 5, now(), now() + interval '10 minutes')
ON CONFLICT (purpose, recipient) DO UPDATE
SET id = EXCLUDED.id, code_hash = EXCLUDED.code_hash,
    attempts_left = EXCLUDED.attempts_left, created_at = EXCLUDED.created_at,
    expires_at = EXCLUDED.expires_at
RETURNING c.id AS code_id \gset
INSERT INTO ref.outbox (code_id, purpose, recipient, payload, created_at)
VALUES (:code_id, 'login', 'u' || :n || '@bench.example',
        decode(repeat(md5(random()::text), 12), 'hex'), now());
COMMIT;
\else
ROLLBACK;
\endif
