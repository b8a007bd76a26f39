-- Webhooks (issue 5): one delivery per outbox event of an execution whose agent has a
-- webhook_url (docs/webhooks.md).
--
-- The delivery row is written by a trigger on execution_events, so it commits in the same
-- transaction as the status change that made the event: no event can be missed by a crash, no
-- cursor has to be kept, and the body is the execution object exactly as it was at that status
-- (GET /executions/{id} would already show a later one by the time any process read it).
--
-- Life of a row (next_attempt_at is the whole scheduling state):
--   due        next_attempt_at <= now()          a dispatcher may claim it
--   in flight  next_attempt_at = lease_until      claimed; due again if the lease runs out
--   backoff    next_attempt_at in the future      a failed attempt waits for its retry
--   blocked    next_attempt_at = 'infinity'      an earlier event of the same execution is
--                                                 still pending: per-execution order
--   done       next_attempt_at IS NULL           delivered (delivered_at) or dead (dead)
CREATE TABLE webhook_deliveries (
    event_id         bigint PRIMARY KEY,   -- execution_events.id, sent as X-Parley-Event-Id
    execution_id     uuid NOT NULL,        -- no FK: see executions
    account_id       uuid NOT NULL,
    status           text NOT NULL,        -- the status the event reports
    url              text NOT NULL,        -- the agent's webhook_url when the event happened
    attempts         integer NOT NULL DEFAULT 0,  -- attempts that finished with an outcome
    next_attempt_at  timestamptz,
    lease_until      timestamptz,          -- set while an attempt is in flight
    lease_owner      text,                 -- the dispatcher replica holding it
    claims           integer NOT NULL DEFAULT 0,  -- fencing token: bumped by every claim
    last_attempt_at  timestamptz,
    last_status_code integer,              -- HTTP status of the last attempt (NULL: no answer)
    last_error       text,                 -- why the last attempt failed (NULL when it did not)
    delivered_at     timestamptz,
    dead             boolean NOT NULL DEFAULT false,
    redeliveries     integer NOT NULL DEFAULT 0,  -- POST .../redeliver calls
    created_at       timestamptz NOT NULL DEFAULT now()
)
-- The table churns like a queue (rows enter, are updated per attempt and leave the pending
-- index): autovacuum visits it early, so that claims do not walk dead index entries.
WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02,
      autovacuum_analyze_scale_factor = 0.05);
-- Only pending rows are indexed beyond the key, so a delivery that ends leaves both indexes
-- and the next update of a row touches as few index pages as possible. The delivery log of an
-- execution is found through execution_events (execution_id, id).
-- The claim scan (schedulable rows, oldest first; blocked rows are not in it):
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL AND next_attempt_at < 'infinity';
-- The per-execution order checks (is an earlier event of this execution still pending?). The
-- two predicates differ on purpose: a query that only says "pending" (IS NOT NULL) can use this
-- index alone, so its plan does not depend on statistics, which swing on a queue table (seen:
-- with stale ones the check walked every pending row, for each status change).
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (execution_id, event_id)
    WHERE next_attempt_at IS NOT NULL;

-- What is POSTed for an event: execution_json at that status, the exact bytes sent (and signed)
-- at every attempt. Written once, never updated: kept apart from webhook_deliveries, whose rows
-- are rewritten at each claim and outcome (measured: with the 1-2 kB body inline, each of those
-- updates copied it into the heap and the WAL again).
CREATE TABLE webhook_bodies (
    event_id  bigint PRIMARY KEY,
    body      text NOT NULL
);

-- AFTER INSERT on the outbox. AFTER row triggers run at the end of the statement that wrote the
-- event, so the execution row read here already carries the status change of that statement
-- (state.c and the api write both in one statement). Agents without a webhook_url cost one
-- indexed join. The FOR SHARE lock on the execution's latest pending delivery serializes with a
-- dispatcher finishing that delivery: either the finish commits first (then the row is no
-- longer pending and the new one starts due), or this transaction commits first (then the
-- finish, which unblocks successors in a later statement, sees the new row).
CREATE FUNCTION webhook_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_url  text;
    v_body text;
BEGIN
    SELECT a.webhook_url, execution_json(x)::text INTO v_url, v_body
      FROM executions x JOIN agents a ON a.id = x.agent_id
     WHERE x.id = NEW.execution_id AND a.webhook_url IS NOT NULL AND a.webhook_url <> '';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM webhook_deliveries d
      WHERE d.execution_id = NEW.execution_id AND d.next_attempt_at IS NOT NULL
      ORDER BY d.execution_id DESC, d.event_id DESC LIMIT 1 FOR SHARE;
    INSERT INTO webhook_deliveries (event_id, execution_id, account_id, status, url,
                                    next_attempt_at)
    VALUES (NEW.id, NEW.execution_id, NEW.account_id, NEW.status, v_url,
            CASE WHEN FOUND THEN 'infinity'::timestamptz ELSE now() END);
    INSERT INTO webhook_bodies (event_id, body) VALUES (NEW.id, v_body);
    RETURN NULL;
END
$$;

CREATE TRIGGER execution_events_webhook AFTER INSERT ON execution_events
    FOR EACH ROW EXECUTE FUNCTION webhook_enqueue();

-- Rows are updated by key (event_id = ANY (...)): plans that stay index walks whatever the
-- statistics of this fast-changing table say.
-- Records the outcomes of finished attempts (arrays of equal length, one entry per attempt) and
-- unblocks the next pending event of every execution whose delivery reached an end. An outcome
-- is 'delivered', 'retry' (due again after delay_ms) or 'dead'. An entry whose claims no longer
-- matches (the lease ran out and another replica claimed the row again) is ignored: that
-- replica's attempt is the one on record. The unblocking runs as a second statement so that it
-- sees events committed while the first one waited for their FOR SHARE locks (see above).
-- Returns how many outcomes were recorded and how many events were unblocked (the caller claims
-- again at once only when some were).
CREATE FUNCTION webhook_finish(p_ids bigint[], p_claims integer[], p_codes integer[],
                               p_errors text[], p_outcomes text[], p_delays bigint[],
                               OUT recorded integer, OUT unblocked integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_done  uuid[];
BEGIN
    unblocked := 0;
    WITH u AS (
        SELECT * FROM unnest(p_ids, p_claims, p_codes, p_errors, p_outcomes, p_delays)
            AS t(id, claims, code, err, outcome, delay_ms)),
    upd AS (
        UPDATE webhook_deliveries d SET
            attempts = d.attempts + 1,
            last_attempt_at = now(),
            last_status_code = u.code,
            last_error = u.err,
            delivered_at = CASE WHEN u.outcome = 'delivered' THEN now() END,
            dead = (u.outcome = 'dead'),
            next_attempt_at = CASE WHEN u.outcome = 'retry'
                                   THEN now() + u.delay_ms * interval '1 millisecond' END,
            lease_until = NULL,
            lease_owner = NULL
        FROM u WHERE d.event_id = ANY (p_ids) AND d.event_id = u.id AND d.claims = u.claims
        RETURNING d.execution_id, u.outcome)
    SELECT count(*)::integer, array_agg(DISTINCT execution_id) FILTER (WHERE outcome <> 'retry')
      INTO recorded, v_done FROM upd;
    IF v_done IS NOT NULL THEN
        -- The first pending delivery of each such execution becomes due if it was blocked.
        UPDATE webhook_deliveries w SET next_attempt_at = now()
         WHERE w.next_attempt_at = 'infinity' AND w.event_id = ANY (ARRAY(
               SELECT DISTINCT ON (s.execution_id) s.event_id FROM webhook_deliveries s
                WHERE s.execution_id = ANY (v_done) AND s.next_attempt_at IS NOT NULL
                ORDER BY s.execution_id, s.event_id));
        GET DIAGNOSTICS unblocked = ROW_COUNT;
    END IF;
END
$$;

-- One entry of the delivery log (GET /executions/{id}/webhooks), the same shape everywhere.
-- state: pending (due, or waiting for its retry at next_attempt_at), blocked (waiting for an
-- earlier event of the execution), in_flight, delivered, dead.
CREATE FUNCTION webhook_delivery_json(d webhook_deliveries) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'event_id', d.event_id,
        'status', d.status,
        'url', d.url,
        'state', CASE WHEN d.delivered_at IS NOT NULL THEN 'delivered'
                      WHEN d.dead THEN 'dead'
                      WHEN d.lease_until > now() THEN 'in_flight'
                      WHEN d.next_attempt_at = 'infinity' THEN 'blocked'
                      ELSE 'pending' END,
        'attempts', d.attempts,
        'last_status_code', d.last_status_code,
        'last_error', d.last_error,
        'last_attempt_at', pl_ts(d.last_attempt_at),
        'next_attempt_at', CASE WHEN d.next_attempt_at = 'infinity' OR d.lease_until > now()
                                THEN NULL ELSE pl_ts(d.next_attempt_at) END,
        'delivered_at', pl_ts(d.delivered_at),
        'dead', d.dead,
        'redeliveries', d.redeliveries,
        'created_at', pl_ts(d.created_at))
$$;

-- POST /executions/{id}/webhooks/{event_id}/redeliver: schedules a new delivery of one event
-- now, with a fresh attempt budget, to the agent's current webhook_url. result is 'scheduled'
-- (delivery: the entry as it is now), 'no_execution', 'no_event', 'in_flight' or 'no_url'.
-- Like every new event, it waits while an earlier event of the execution is pending.
CREATE FUNCTION webhook_redeliver(p_execution uuid, p_account uuid, p_event bigint,
                                  OUT result text, OUT delivery jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_row webhook_deliveries;
    v_url text;
BEGIN
    SELECT d.* INTO v_row FROM webhook_deliveries d JOIN executions e ON e.id = d.execution_id
     WHERE d.event_id = p_event AND d.execution_id = p_execution AND e.account_id = p_account
       FOR UPDATE OF d;
    IF NOT FOUND THEN
        result := CASE WHEN EXISTS (SELECT 1 FROM executions
                                     WHERE id = p_execution AND account_id = p_account)
                       THEN 'no_event' ELSE 'no_execution' END;
        RETURN;
    END IF;
    IF v_row.lease_until > now() THEN
        result := 'in_flight';
        RETURN;
    END IF;
    SELECT a.webhook_url INTO v_url FROM executions x JOIN agents a ON a.id = x.agent_id
     WHERE x.id = p_execution;
    IF v_url IS NULL OR v_url = '' THEN
        result := 'no_url';
        RETURN;
    END IF;
    PERFORM 1 FROM webhook_deliveries p
      WHERE p.execution_id = p_execution AND p.event_id < p_event
        AND p.next_attempt_at IS NOT NULL;
    -- claims + 1: a late outcome of an attempt whose lease ran out cannot land on this one.
    UPDATE webhook_deliveries SET url = v_url, attempts = 0, dead = false, delivered_at = NULL,
           next_attempt_at = CASE WHEN FOUND THEN 'infinity'::timestamptz ELSE now() END,
           lease_until = NULL, lease_owner = NULL, redeliveries = redeliveries + 1,
           claims = claims + 1
     WHERE event_id = p_event
    RETURNING webhook_delivery_json(webhook_deliveries) INTO delivery;
    result := 'scheduled';
END
$$;
