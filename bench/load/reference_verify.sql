-- pgbench script: VerifyCode as a straightforward application would write
-- it in SQL, the reference scripts/load.sh compares the service's
-- VerifyCode with. It lives beside the load tool, not in migrations/ or
-- the store, because it is part of the benchmark; the tables are
-- reference_schema.sql's, never the service's.
--
--   pgbench -n -M prepared -f reference_verify.sql -D recipients=1000000 \
--       -D right_percent=50 -c 64 -j 2 -T 30 URL
--
-- Four statements, each a round trip: BEGIN, the code locked and read,
-- then for a right guess (right_percent of them) its delete, for a wrong
-- one an attempt taken off it, COMMIT. The application would compare the
-- hash itself; here the dice decide, as the load tool's do.
\set n random(0, :recipients - 1)
\set roll random(1, 100)
BEGIN;
SELECT code_hash, attempts_left, expires_at FROM ref.codes
WHERE purpose = 'login' AND recipient = 'u' || :n || '@bench.example'
FOR UPDATE;
\if :roll <= :right_percent
DELETE FROM ref.codes
WHERE purpose = 'login' AND recipient = 'u' || :n || '@bench.example';
\else
UPDATE ref.codes
SET attempts_left = attempts_left - 1,
    code_hash = CASE WHEN attempts_left = 1 THEN NULL ELSE code_hash END
WHERE purpose = 'login' AND recipient = 'u' || :n || '@bench.example'
  AND attempts_left > 0;
\endif
COMMIT;
