-- Delivery, version 2: idempotent issuing, per-provider send quotas and
-- delivery status.

-- A caller's idempotency key, per tenant, for as long as the code it
-- produced lives: a retry with the same key and the same request gets the
-- first response; the same key with another request is refused.
CREATE TABLE idempotency_keys (
  tenant       text NOT NULL,
  key          text NOT NULL,
  -- SHA-256 of the request's fields, as the server canonicalises them.
  fingerprint  bytea NOT NULL,
  code_id      uuid NOT NULL,
  expires_at   timestamptz NOT NULL,
  resend_after timestamptz NOT NULL,
  PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- Sends per provider instance in fixed windows (aligned to the epoch), so
-- a quota holds across replicas.
CREATE TABLE provider_quota (
  provider     text NOT NULL,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL,
  used         integer NOT NULL,
  PRIMARY KEY (provider, window_start)
);

-- Takes one send from p_provider's quota of p_limit per p_window; false
-- when the current window's quota is spent.
CREATE FUNCTION authcode_take_quota(
  p_provider text, p_window interval, p_limit integer) RETURNS boolean
LANGUAGE sql AS $$
  WITH w AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) /
                              extract(epoch FROM p_window)) *
                        extract(epoch FROM p_window)) AS start)
  INSERT INTO provider_quota AS q (provider, window_start, window_end, used)
  SELECT p_provider, w.start, w.start + p_window, 1 FROM w
  ON CONFLICT (provider, window_start) DO UPDATE SET used = q.used + 1
  WHERE q.used < p_limit
  RETURNING true
$$;

DROP FUNCTION authcode_issue(
  text, text, text, uuid, text, bytea, interval, integer, interval[],
  integer[], bytea, text, integer);

-- As in version 1, plus idempotency: with p_idem_key set, a request whose
-- key was already used for this tenant (and whose code still lives) gets
-- 'replayed' and the first call's answer if p_fingerprint matches, or
-- 'key_mismatch' if it does not. Replays queue nothing and count against
-- no limit. o_code_id is the code's id: the new one, or the first call's.
CREATE FUNCTION authcode_issue(
  p_tenant text, p_purpose text, p_recipient text,
  p_code_id uuid, p_key_id text, p_code_hash bytea,
  p_ttl interval, p_max_attempts integer,
  p_windows interval[], p_limits integer[],
  p_payload bytea, p_payload_key_id text, p_job_max_attempts integer,
  p_idem_key text, p_fingerprint bytea,
  OUT o_status text, OUT o_code_id uuid, OUT o_expires_at timestamptz,
  OUT o_resend_after timestamptz, OUT o_retry_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  lim recipient_limits%ROWTYPE;
  idem idempotency_keys%ROWTYPE;
  ts timestamptz;
  recent timestamptz[];
  free_at timestamptz;
  old_code_id uuid;
  stored integer;
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

  PERFORM pg_notify('authcode_delivery', '');
END $$;

-- A delivery's status by code id, for one tenant. No row when unknown.
CREATE FUNCTION authcode_get_delivery(p_tenant text, p_code_id uuid)
RETURNS TABLE (state text, attempts integer, provider text,
               provider_message_id text, last_error text,
               created_at timestamptz, updated_at timestamptz,
               next_attempt_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT state, attempts, provider, provider_message_id, last_error,
         created_at, updated_at,
         CASE WHEN state = 'queued' THEN next_attempt_at END
  FROM delivery_jobs WHERE tenant = p_tenant AND code_id = p_code_id
$$;

DROP FUNCTION authcode_cleanup(interval, interval, interval, integer);

-- As in version 1, plus expired idempotency keys and past quota windows.
CREATE FUNCTION authcode_cleanup(
  p_keep_expired interval, p_longest_window interval,
  p_forget_failures interval, p_batch integer,
  OUT o_codes integer, OUT o_limits integer, OUT o_jobs integer,
  OUT o_keys integer)
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

  DELETE FROM idempotency_keys AS k USING (
    SELECT tenant, key FROM idempotency_keys
    WHERE expires_at < ts
    LIMIT p_batch FOR UPDATE SKIP LOCKED) AS d
  WHERE (k.tenant, k.key) = (d.tenant, d.key);
  GET DIAGNOSTICS o_keys = ROW_COUNT;

  -- Quota windows are few (one per provider per window): no batching.
  DELETE FROM provider_quota WHERE window_end < ts;
END $$;
