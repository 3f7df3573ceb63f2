-- Callers, version 4: per-IP issue limits and a tenant-wide ceiling.
--
-- Lock order grows to recipient_limits, ip_limits, tenant_quota, then
-- codes and delivery_jobs. A tenant's ceiling rows are shared by all its
-- issues, so they are locked last, once every other check has passed, and
-- only when the tenant has a ceiling.

-- Issue times per (tenant, client IP), for one address asking for codes
-- for many recipients. The server passes the IP as it counts it: IPv4 as
-- written, IPv6 cut to its configured prefix ("2001:db8:1:2::/64").
CREATE TABLE ip_limits (
  tenant         text NOT NULL,
  ip             text NOT NULL,
  issued_at      timestamptz[] NOT NULL DEFAULT '{}',
  last_issued_at timestamptz,
  PRIMARY KEY (tenant, ip)
);

-- Issues per tenant in fixed windows aligned to the Unix epoch: exact
-- across replicas, like provider_quota.
CREATE TABLE tenant_quota (
  tenant       text NOT NULL,
  window_len   interval NOT NULL,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL,
  used         integer NOT NULL DEFAULT 0 CHECK (used >= 0),
  PRIMARY KEY (tenant, window_len, window_start)
);

DROP FUNCTION authcode_issue(
  text, text, text, uuid, text, bytea, interval, integer, interval[],
  integer[], bytea, text, integer, text, bytea);

-- As in version 2, plus: with p_ip set, the per-IP windows
-- (p_ip_windows, p_ip_limits) must also allow the issue ('ip_limited'
-- otherwise), and with p_ceiling_windows set, the tenant's fixed windows
-- must have room ('tenant_limited', o_retry_at at the end of the full
-- window). Nothing is counted anywhere unless the code is issued.
CREATE FUNCTION authcode_issue(
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

  PERFORM pg_notify('authcode_delivery', '');
END $$;

DROP FUNCTION authcode_cleanup(interval, interval, interval, integer);

-- As in version 2, plus per-IP rows idle for p_longest_ip_window (counted
-- with o_limits) and past ceiling windows. Each longest window is that of
-- any tenant.
CREATE FUNCTION authcode_cleanup(
  p_keep_expired interval, p_longest_window interval,
  p_longest_ip_window interval, p_forget_failures interval, p_batch integer,
  OUT o_codes integer, OUT o_limits integer, OUT o_jobs integer,
  OUT o_keys integer)
LANGUAGE plpgsql AS $$
DECLARE
  ts timestamptz := now();
  n integer;
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

  DELETE FROM ip_limits AS l USING (
    SELECT tenant, ip FROM ip_limits
    WHERE last_issued_at IS NULL OR last_issued_at < ts - p_longest_ip_window
    LIMIT p_batch FOR UPDATE SKIP LOCKED) AS d
  WHERE (l.tenant, l.ip) = (d.tenant, d.ip);
  GET DIAGNOSTICS n = ROW_COUNT;
  o_limits := o_limits + n;

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

  -- Windows are few (one per provider or tenant ceiling): no batching.
  DELETE FROM provider_quota WHERE window_end < ts;
  DELETE FROM tenant_quota WHERE window_end < ts;
END $$;
