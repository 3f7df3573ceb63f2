-- authcode schema, version 1.
--
-- Every rule that must hold across server replicas lives here, inside
-- functions that run as one statement: the server calls authcode_issue()
-- or authcode_verify() once per RPC, and row locks on recipient_limits
-- serialise everything done for one (tenant, purpose, recipient).
-- Lock order is always recipient_limits, then codes, then delivery_jobs.
--
-- Nothing here holds a readable code: codes are HMAC-SHA256 hashes under a
-- key the database never sees, and delivery payloads are AES-256-GCM
-- sealed by the server and wiped once the job is final.

-- Issue times and failed guesses per (tenant, purpose, recipient).
CREATE TABLE recipient_limits (
  tenant          text NOT NULL,
  purpose         text NOT NULL,
  recipient       text NOT NULL,
  -- Issues inside the longest configured window, oldest first.
  issued_at       timestamptz[] NOT NULL DEFAULT '{}',
  last_issued_at  timestamptz,
  -- Consecutive failed guesses across codes; a success resets it, a new
  -- code does not.
  failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  last_failure_at timestamptz,
  locked_until    timestamptz,
  PRIMARY KEY (tenant, purpose, recipient)
);

-- The live code per (tenant, purpose, recipient); issuing replaces it.
CREATE TABLE codes (
  tenant        text NOT NULL,
  purpose       text NOT NULL,
  recipient     text NOT NULL,
  id            uuid NOT NULL,
  -- Which hashing key made code_hash, so keys can rotate.
  key_id        text NOT NULL,
  -- NULL once the code is discarded (attempts spent, or lock-out).
  code_hash     bytea CHECK (length(code_hash) = 32),
  attempts_left integer NOT NULL CHECK (attempts_left >= 0),
  created_at    timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant, purpose, recipient)
);
CREATE UNIQUE INDEX codes_id ON codes (id);
CREATE INDEX codes_expires_at ON codes (expires_at);

-- The outbox: one job per issued code, written in the same transaction.
CREATE TABLE delivery_jobs (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code_id             uuid NOT NULL UNIQUE,
  tenant              text NOT NULL,
  purpose             text NOT NULL,
  state               text NOT NULL DEFAULT 'queued' CHECK (state IN
                        ('queued', 'sending', 'sent', 'failed', 'superseded')),
  -- Sealed recipient, code and template values; NULL once final.
  payload             bytea,
  payload_key_id      text,
  attempts            integer NOT NULL DEFAULT 0,
  max_attempts        integer NOT NULL CHECK (max_attempts > 0),
  next_attempt_at     timestamptz NOT NULL,
  lease_until         timestamptz,
  -- The code's expiry: a job not sent by then is abandoned.
  expires_at          timestamptz NOT NULL,
  provider            text,
  provider_message_id text,
  last_error          text,
  created_at          timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL,
  CHECK ((state IN ('queued', 'sending')) = (payload IS NOT NULL))
);
CREATE INDEX delivery_jobs_due ON delivery_jobs (next_attempt_at)
  WHERE state = 'queued';
CREATE INDEX delivery_jobs_leased ON delivery_jobs (lease_until)
  WHERE state = 'sending';
CREATE INDEX delivery_jobs_final ON delivery_jobs (updated_at)
  WHERE state IN ('sent', 'failed', 'superseded');

-- Compares two hashes in time that depends only on their length, so a
-- caller cannot learn a prefix of a stored hash from response times.
CREATE FUNCTION authcode_ct_equal(a bytea, b bytea) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  diff integer := 0;
BEGIN
  IF length(a) <> length(b) THEN
    RETURN false;
  END IF;
  FOR i IN 0 .. length(a) - 1 LOOP
    diff := diff | (get_byte(a, i) # get_byte(b, i));
  END LOOP;
  RETURN diff = 0;
END $$;

-- The earliest time at or after p_now when one more issue fits every
-- window, given p_recent, the issue times inside the longest window.
-- An issue at time e counts in a window w at time t while e > t - w.
CREATE FUNCTION authcode_window_free_at(
  p_recent timestamptz[], p_windows interval[], p_limits integer[],
  p_now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  free_at timestamptz := p_now;
  inside timestamptz[];
  n integer;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_windows, 1), 0) LOOP
    inside := ARRAY(SELECT t FROM unnest(p_recent) AS t
                    WHERE t > p_now - p_windows[i] ORDER BY t);
    n := coalesce(array_length(inside, 1), 0);
    IF n >= p_limits[i] THEN
      -- The oldest n - limit + 1 issues must leave the window first.
      free_at := greatest(free_at, inside[n - p_limits[i] + 1] + p_windows[i]);
    END IF;
  END LOOP;
  RETURN free_at;
END $$;

-- Issues a code: checks the lock-out and the issue windows, replaces the
-- live code, supersedes the old code's unsent job and queues a new one.
-- o_status: 'issued', 'rate_limited' or 'locked' (o_retry_at says until
-- when).
CREATE FUNCTION authcode_issue(
  p_tenant text, p_purpose text, p_recipient text,
  p_code_id uuid, p_key_id text, p_code_hash bytea,
  p_ttl interval, p_max_attempts integer,
  p_windows interval[], p_limits integer[],
  p_payload bytea, p_payload_key_id text, p_job_max_attempts integer,
  OUT o_status text, OUT o_expires_at timestamptz,
  OUT o_resend_after timestamptz, OUT o_retry_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  lim recipient_limits%ROWTYPE;
  ts timestamptz;
  recent timestamptz[];
  free_at timestamptz;
  old_code_id uuid;
BEGIN
  INSERT INTO recipient_limits (tenant, purpose, recipient)
  VALUES (p_tenant, p_purpose, p_recipient) ON CONFLICT DO NOTHING;
  SELECT * INTO lim FROM recipient_limits
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient
  FOR UPDATE;
  -- Read the clock only once the lock is held, so issue times are in the
  -- order the lock was granted.
  ts := clock_timestamp();

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
  PERFORM pg_notify('authcode_delivery', '');

  o_status := 'issued';
  o_expires_at := ts + p_ttl;
  o_resend_after := authcode_window_free_at(recent, p_windows, p_limits, ts);
END $$;

-- Checks a guess. The server passes the candidate's hash under every key
-- it holds (p_key_ids[i] made p_hashes[i]); the stored key id picks one.
-- o_outcome: 'verified', 'wrong', 'expired', 'no_code', 'exhausted',
-- 'locked' (o_locked_until set) or 'unknown_key' (o_key_id names the key
-- the code was hashed under, which the server no longer holds).
CREATE FUNCTION authcode_verify(
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

  SELECT * INTO c FROM codes
  WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient
  FOR UPDATE;
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
    UPDATE recipient_limits SET failures = 0, last_failure_at = NULL
    WHERE tenant = p_tenant AND purpose = p_purpose AND recipient = p_recipient;
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

-- Claims up to p_limit jobs that are due, or whose worker's lease ran out,
-- for one worker: each claimed job is leased until now() + p_lease and its
-- attempt counted. SKIP LOCKED lets replicas claim side by side.
CREATE FUNCTION authcode_claim_jobs(p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, code_id uuid, tenant text, purpose text,
               payload bytea, payload_key_id text, attempts integer,
               max_attempts integer, expires_at timestamptz,
               expired boolean)
LANGUAGE sql AS $$
  WITH due AS (
    SELECT j.id FROM delivery_jobs AS j
    WHERE (j.state = 'queued' AND j.next_attempt_at <= now())
       OR (j.state = 'sending' AND j.lease_until < now())
    ORDER BY j.next_attempt_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED)
  UPDATE delivery_jobs AS j
  SET state = 'sending', attempts = j.attempts + 1,
      lease_until = now() + p_lease, updated_at = now()
  FROM due WHERE j.id = due.id
  RETURNING j.id, j.code_id, j.tenant, j.purpose, j.payload, j.payload_key_id,
            j.attempts, j.max_attempts, j.expires_at, j.expires_at <= now()
$$;

-- Ends or reschedules a claimed job. p_attempt fences out a worker whose
-- lease ran out and whose job was claimed again: its report is ignored
-- (returns false). p_outcome: 'sent', 'retry' (again after p_retry_in),
-- 'failed', or 'release' (not tried: back to the queue, attempt uncounted).
CREATE FUNCTION authcode_finish_job(
  p_id bigint, p_attempt integer, p_outcome text, p_provider text,
  p_message_id text, p_error text, p_retry_in interval) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF p_outcome = 'release' THEN
    UPDATE delivery_jobs
    SET state = 'queued', lease_until = NULL, attempts = attempts - 1,
        next_attempt_at = now(), updated_at = now()
    WHERE id = p_id AND state = 'sending' AND attempts = p_attempt;
  ELSIF p_outcome = 'retry' THEN
    UPDATE delivery_jobs
    SET state = 'queued', lease_until = NULL, provider = p_provider,
        last_error = p_error, next_attempt_at = now() + p_retry_in,
        updated_at = now()
    WHERE id = p_id AND state = 'sending' AND attempts = p_attempt;
  ELSE
    UPDATE delivery_jobs
    SET state = CASE WHEN p_outcome = 'sent' THEN 'sent' ELSE 'failed' END,
        payload = NULL, payload_key_id = NULL, lease_until = NULL,
        provider = p_provider, provider_message_id = p_message_id,
        last_error = p_error, updated_at = now()
    WHERE id = p_id AND state = 'sending' AND attempts = p_attempt;
  END IF;
  RETURN FOUND;
END $$;

-- Deletes up to p_batch rows of each kind that nothing needs any more and
-- returns how many went. Rows locked by a running RPC are skipped, and
-- only plain column tests decide, so a row changed meanwhile is kept.
CREATE FUNCTION authcode_cleanup(
  p_keep_expired interval, p_longest_window interval,
  p_forget_failures interval, p_batch integer,
  OUT o_codes integer, OUT o_limits integer, OUT o_jobs integer)
LANGUAGE plpgsql AS $$
DECLARE
  ts timestamptz := now();
BEGIN
  DELETE FROM codes AS c USING (
    SELECT tenant, purpose, recipient FROM codes
    WHERE expires_at < ts - p_keep_expired
    LIMIT p_batch FOR UPDATE SKIP LOCKED) AS d
  WHERE (c.tenant, c.purpose, c.recipient) = (d.tenant, d.purpose, d.recipient);
  GET DIAGNOSTICS o_codes = ROW_COUNT;

  DELETE FROM recipient_limits AS l USING (
    SELECT tenant, purpose, recipient FROM recipient_limits
    WHERE (last_issued_at IS NULL OR last_issued_at < ts - p_longest_window)
      AND (locked_until IS NULL OR locked_until < ts)
      AND (failures = 0 OR last_failure_at < ts - p_forget_failures)
    LIMIT p_batch FOR UPDATE SKIP LOCKED) AS d
  WHERE (l.tenant, l.purpose, l.recipient) = (d.tenant, d.purpose, d.recipient);
  GET DIAGNOSTICS o_limits = ROW_COUNT;

  DELETE FROM delivery_jobs AS j USING (
    SELECT id FROM delivery_jobs
    WHERE state IN ('sent', 'failed', 'superseded')
      AND updated_at < ts - p_keep_expired
    LIMIT p_batch FOR UPDATE SKIP LOCKED) AS d
  WHERE j.id = d.id;
  GET DIAGNOSTICS o_jobs = ROW_COUNT;
END $$;
