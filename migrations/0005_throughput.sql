-- Throughput, version 5: the changes the load benchmark (bench/README.md)
-- profiled its way to.
--
-- 1. authcode_issue() no longer calls pg_notify(). A notifying
--    transaction holds a database-wide lock from its pre-commit until its
--    commit record is flushed, so no two issues could share a WAL flush:
--    with it, 64 callers issued half as many codes per second. The server
--    wakes its own delivery workers once the issue has committed and
--    tells other replicas with one NOTIFY of its own every few
--    milliseconds at most (server/store.cc, JobSignal).
-- 2. authcode_window_free_at() is arithmetic on the sorted array instead
--    of a query per window: the limit-th newest issue is inside a window
--    exactly when at least `limit` issues are, and it is the one that
--    must leave first. Its callers pass the times oldest first, as they
--    did.
-- 3. authcode_claim_jobs() keeps one cached plan. Version 3 planned its
--    query afresh on every call (so that the LIMIT was known), and under
--    load planning cost four times what running it did. Here the due jobs
--    are read in index order through a cursor, which PostgreSQL plans for
--    the first rows, and the loop stops after p_limit of them; only those
--    are locked. Half the time per claim, with 20,000 jobs due as with 10.
--    Each job also comes with its age, for the delivery-latency metric.
-- 4. authcode_verify() writes less: the code row is no longer locked
--    (every change to it is made under the recipient's lock, which verify
--    holds already), and a right guess no longer rewrites a failure streak
--    that is already zero. A right guess went from four row writes to two.

CREATE OR REPLACE FUNCTION authcode_window_free_at(
  p_recent timestamptz[], p_windows interval[], p_limits integer[],
  p_now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  free_at timestamptz := p_now;
  k integer;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_windows, 1), 0) LOOP
    k := coalesce(array_length(p_recent, 1), 0) - p_limits[i] + 1;
    IF k >= 1 AND p_recent[k] > p_now - p_windows[i] THEN
      free_at := greatest(free_at, p_recent[k] + p_windows[i]);
    END IF;
  END LOOP;
  RETURN free_at;
END $$;

-- As in version 4, without the pg_notify().
CREATE OR REPLACE FUNCTION authcode_issue(
  p_tenant text, p_purpose text, p_recipient text,
  p_code_id uuid, p_key_id text, p_code_hash bytea,
  p_ttl interval, p_max_attempts integer,
  p_windows interval[], p_limits integer[],
  p_payload bytea, p_payload_key_id text, p_job_max_attempts integer,
  p_idem_key text, p_fingerprint bytea,
  p_ip text, p_ip_windows interval[], p_ip_limits integer[],
  p_ceiling_windows interval[], p_ceiling_limits integer[],
  OUT o_status text, OUT o_code_id uuid, OUT o_expires_at timestamptz,
  OUT o_resend_after timestamptz, OUT o_retry_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  lim recipient_limits%ROWTYPE;
  ipl ip_limits%ROWTYPE;
  idem idempotency_keys%ROWTYPE;
  ts timestamptz;
  recent timestamptz[];
  ip_recent timestamptz[];
  free_at timestamptz;
  old_code_id uuid;
  stored integer;
  w_start timestamptz;
  w_used integer;
  n_ceilings integer := coalesce(array_length(p_ceiling_windows, 1), 0);
  use_ip boolean := p_ip IS NOT NULL
                    AND coalesce(array_length(p_ip_windows, 1), 0) > 0;
BEGIN
  INSERT INTO recipient_limits (tenant, purpose, recipient)
  VALUES (p_tenant, p_purpose, p_recipient) ON CONFLICT DO NOTHING;
  SELECT * INTO lim FROM recipient_limits
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient
  FOR UPDATE;
  ts := clock_timestamp();

  -- Read under the recipient's lock, so a parallel retry with the same key
  -- waits for the first call and then sees its answer.
  IF p_idem_key IS NOT NULL THEN
    SELECT * INTO idem FROM idempotency_keys
    WHERE tenant = p_tenant AND key = p_idem_key AND expires_at > ts;
    IF FOUND THEN
      o_status := CASE WHEN idem.fingerprint = p_fingerprint
                       THEN 'replayed' ELSE 'key_mismatch' END;
      o_code_id := idem.code_id;
      o_expires_at := idem.expires_at;
      o_resend_after := idem.resend_after;
      RETURN;
    END IF;
  END IF;

  IF lim.locked_until > ts THEN
    o_status := 'locked';
    o_retry_at := lim.locked_until;
    RETURN;
  END IF;

  recent := ARRAY(SELECT t FROM unnest(lim.issued_at) AS t
                  WHERE t > ts - (SELECT max(w) FROM unnest(p_windows) AS w)
                  ORDER BY t);
  free_at := authcode_window_free_at(recent, p_windows, p_limits, ts);
  IF free_at > ts THEN
    o_status := 'rate_limited';
    o_retry_at := free_at;
    RETURN;
  END IF;

  IF use_ip THEN
    INSERT INTO ip_limits (tenant, ip) VALUES (p_tenant, p_ip)
    ON CONFLICT DO NOTHING;
    SELECT * INTO ipl FROM ip_limits
    WHERE tenant = p_tenant AND ip = p_ip FOR UPDATE;
    -- The clock again: waiting for this lock took time.
    ts := greatest(ts, clock_timestamp());
    ip_recent := ARRAY(SELECT t FROM unnest(ipl.issued_at) AS t
                       WHERE t > ts - (SELECT max(w)
                                       FROM unnest(p_ip_windows) AS w)
                       ORDER BY t);
    free_at := authcode_window_free_at(ip_recent, p_ip_windows, p_ip_limits,
                                       ts);
    IF free_at > ts THEN
      o_status := 'ip_limited';
      o_retry_at := free_at;
      RETURN;
    END IF;
  END IF;

  -- Check every ceiling window before counting in any, so a refusal
  -- leaves all of them as they were.
  FOR i IN 1 .. n_ceilings LOOP
    w_start := to_timestamp(floor(extract(epoch FROM ts) /
                                  extract(epoch FROM p_ceiling_windows[i])) *
                            extract(epoch FROM p_ceiling_windows[i]));
    INSERT INTO tenant_quota (tenant, window_len, window_start, window_end)
    VALUES (p_tenant, p_ceiling_windows[i], w_start,
            w_start + p_ceiling_windows[i])
    ON CONFLICT DO NOTHING;
    SELECT used INTO w_used FROM tenant_quota
    WHERE tenant = p_tenant AND window_len = p_ceiling_windows[i]
      AND window_start = w_start
    FOR UPDATE;
    IF w_used >= p_ceiling_limits[i] THEN
      o_status := 'tenant_limited';
      o_retry_at := w_start + p_ceiling_windows[i];
      RETURN;
    END IF;
  END LOOP;
  FOR i IN 1 .. n_ceilings LOOP
    UPDATE tenant_quota SET used = used + 1
    WHERE tenant = p_tenant AND window_len = p_ceiling_windows[i]
      AND window_start = to_timestamp(
            floor(extract(epoch FROM ts) /
                  extract(epoch FROM p_ceiling_windows[i])) *
            extract(epoch FROM p_ceiling_windows[i]));
  END LOOP;

  IF use_ip THEN
    UPDATE ip_limits SET issued_at = ip_recent || ts, last_issued_at = ts
    WHERE tenant = p_tenant AND ip = p_ip;
  END IF;

  recent := recent || ts;
  UPDATE recipient_limits
  SET issued_at = recent, last_issued_at = ts
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;

  SELECT id INTO old_code_id FROM codes
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;
  INSERT INTO codes (tenant, purpose, recipient, id, key_id, code_hash,
                     attempts_left, created_at, expires_at)
  VALUES (p_tenant, p_purpose, p_recipient, p_code_id, p_key_id, p_code_hash,
          p_max_attempts, ts, ts + p_ttl)
  ON CONFLICT (tenant, purpose, recipient) DO UPDATE
  SET id = EXCLUDED.id, key_id = EXCLUDED.key_id,
      code_hash = EXCLUDED.code_hash, attempts_left = EXCLUDED.attempts_left,
      created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at;

  IF old_code_id IS NOT NULL THEN
    UPDATE delivery_jobs
    SET state = 'superseded', payload = NULL, payload_key_id = NULL,
        last_error = 'superseded by a newer code', updated_at = ts
    WHERE code_id = old_code_id AND state = 'queued';
  END IF;
  INSERT INTO delivery_jobs (code_id, tenant, purpose, payload, payload_key_id,
                             max_attempts, next_attempt_at, expires_at,
                             created_at, updated_at)
  VALUES (p_code_id, p_tenant, p_purpose, p_payload, p_payload_key_id,
          p_job_max_attempts, ts, ts + p_ttl, ts, ts);

  o_status := 'issued';
  o_code_id := p_code_id;
  o_expires_at := ts + p_ttl;
  o_resend_after := authcode_window_free_at(recent, p_windows, p_limits, ts);

  IF p_idem_key IS NOT NULL THEN
    -- Taken meanwhile by a request for another recipient or purpose (a
    -- different lock): that is a reuse of the key, and nothing of this
    -- call may stay.
    INSERT INTO idempotency_keys (tenant, key, fingerprint, code_id,
                                  expires_at, resend_after)
    VALUES (p_tenant, p_idem_key, p_fingerprint, p_code_id, o_expires_at,
            o_resend_after)
    ON CONFLICT (tenant, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, code_id = EXCLUDED.code_id,
        expires_at = EXCLUDED.expires_at,
        resend_after = EXCLUDED.resend_after
    WHERE idempotency_keys.expires_at <= ts;
    GET DIAGNOSTICS stored = ROW_COUNT;
    IF stored = 0 THEN
      RAISE EXCEPTION 'idempotency key reused for a different request'
        USING ERRCODE = 'AC001';
    END IF;
  END IF;

END $$;

DROP FUNCTION authcode_claim_jobs(integer, interval);
CREATE FUNCTION authcode_claim_jobs(p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, code_id uuid, tenant text, purpose text,
               payload bytea, payload_key_id text, attempts integer,
               max_attempts integer, expires_at timestamptz,
               expired boolean, queued_for interval)
LANGUAGE plpgsql AS $$
-- The OUT columns share names with the table's.
#variable_conflict use_column
DECLARE
  due refcursor;
  job_id bigint;
  claimed integer := 0;
BEGIN
  -- Jobs whose worker died (their lease ran out) first, then queued ones.
  -- A row is locked when it is fetched, so fetching stops as soon as the
  -- batch is full; each job is then updated by its key.
  FOR pass IN 1 .. 2 LOOP
    IF pass = 1 THEN
      OPEN due FOR
        SELECT j.id FROM delivery_jobs AS j
        WHERE j.state = 'sending' AND j.lease_until < now()
        ORDER BY j.lease_until
        FOR UPDATE SKIP LOCKED;
    ELSE
      OPEN due FOR
        SELECT j.id FROM delivery_jobs AS j
        WHERE j.state = 'queued' AND j.next_attempt_at <= now()
        ORDER BY j.next_attempt_at
        FOR UPDATE SKIP LOCKED;
    END IF;
    LOOP
      EXIT WHEN claimed >= p_limit;
      FETCH due INTO job_id;
      EXIT WHEN NOT FOUND;
      RETURN QUERY
      UPDATE delivery_jobs AS j
      SET state = 'sending', attempts = j.attempts + 1,
          lease_until = now() + p_lease, updated_at = now()
      WHERE j.id = job_id
      RETURNING j.id, j.code_id, j.tenant, j.purpose, j.payload,
                j.payload_key_id, j.attempts, j.max_attempts, j.expires_at,
                j.expires_at <= now(), clock_timestamp() - j.created_at;
      claimed := claimed + 1;
    END LOOP;
    CLOSE due;
  END LOOP;
END $$;

-- As in version 1, with the two writes fewer (4. above).
CREATE OR REPLACE FUNCTION authcode_verify(
  p_tenant text, p_purpose text, p_recipient text,
  p_key_ids text[], p_hashes bytea[],
  p_max_failures integer, p_lockout interval, p_forget_failures interval,
  OUT o_outcome text, OUT o_attempts_left integer,
  OUT o_locked_until timestamptz, OUT o_key_id text)
LANGUAGE plpgsql AS $$
DECLARE
  lim recipient_limits%ROWTYPE;
  c codes%ROWTYPE;
  ts timestamptz;
  k integer;
  streak integer;
BEGIN
  o_attempts_left := 0;
  SELECT * INTO lim FROM recipient_limits
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient
  FOR UPDATE;
  IF NOT FOUND THEN
    -- Clean-up may have dropped an idle row while its code lives on.
    IF NOT EXISTS (SELECT 1 FROM codes WHERE tenant = p_tenant
                   AND purpose = p_purpose AND recipient = p_recipient) THEN
      o_outcome := 'no_code';
      RETURN;
    END IF;
    INSERT INTO recipient_limits (tenant, purpose, recipient)
    VALUES (p_tenant, p_purpose, p_recipient) ON CONFLICT DO NOTHING;
    SELECT * INTO lim FROM recipient_limits
    WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient
    FOR UPDATE;
  END IF;
  ts := clock_timestamp();

  IF lim.locked_until > ts THEN
    o_outcome := 'locked';
    o_locked_until := lim.locked_until;
    RETURN;
  END IF;

  -- Every change to a code is made under its recipient's row lock, taken
  -- above, so the code needs no lock of its own.
  SELECT * INTO c FROM codes
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;
  IF NOT FOUND THEN
    o_outcome := 'no_code';
    RETURN;
  END IF;
  IF c.expires_at <= ts THEN
    o_outcome := 'expired';
    RETURN;
  END IF;
  IF c.code_hash IS NULL OR c.attempts_left = 0 THEN
    o_outcome := 'exhausted';
    RETURN;
  END IF;
  k := array_position(p_key_ids, c.key_id);
  IF k IS NULL THEN
    o_outcome := 'unknown_key';
    o_key_id := c.key_id;
    RETURN;
  END IF;

  IF authcode_ct_equal(c.code_hash, p_hashes[k]) THEN
    DELETE FROM codes WHERE tenant = p_tenant AND purpose = p_purpose
                        AND recipient = p_recipient;
    IF lim.failures <> 0 OR lim.last_failure_at IS NOT NULL THEN
      UPDATE recipient_limits SET failures = 0, last_failure_at = NULL
      WHERE tenant = p_tenant AND purpose = p_purpose
        AND recipient = p_recipient;
    END IF;
    o_outcome := 'verified';
    RETURN;
  END IF;

  streak := CASE WHEN lim.last_failure_at > ts - p_forget_failures
                   THEN lim.failures ELSE 0 END + 1;
  IF streak >= p_max_failures THEN
    -- Lock-out: the streak starts over when the lock ends.
    UPDATE recipient_limits
    SET failures = 0, last_failure_at = ts, locked_until = ts + p_lockout
    WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;
    UPDATE codes SET code_hash = NULL, attempts_left = 0
    WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;
    o_outcome := 'locked';
    o_locked_until := ts + p_lockout;
    RETURN;
  END IF;

  UPDATE recipient_limits SET failures = streak, last_failure_at = ts
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;
  o_attempts_left := c.attempts_left - 1;
  -- The last failed attempt discards the code.
  UPDATE codes
  SET attempts_left = o_attempts_left,
      code_hash = CASE WHEN o_attempts_left = 0 THEN NULL ELSE code_hash END
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;
  o_outcome := 'wrong';
END $$;
