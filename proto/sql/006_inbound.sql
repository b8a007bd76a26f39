-- Inbound calls (issue 6): the carrier numbers an account owns, the agent each one answers with,
-- and what the gateway needs to apply an agent's inbound rules.

-- A number the account already owns at its carrier (we do not buy numbers). One live row per
-- (carrier, number) across all accounts: a carrier routes a number to exactly one voice URL.
-- Deleting soft-deletes (executions keep naming the number) and unlinks.
CREATE TABLE phone_numbers (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id          uuid NOT NULL REFERENCES accounts(id),
    phone_number        text NOT NULL,               -- E.164, '+' and digits
    telephony_provider  text NOT NULL CHECK (telephony_provider IN ('twilio', 'plivo', 'exotel')),
    -- Which of the gateway's credential sets for this carrier authenticates the number's
    -- webhooks: 'default' = PL_TWILIO_* / PL_PLIVO_* / PL_EXOTEL_*; another name N =
    -- PL_<CARRIER>_CREDENTIALS_<N> (docs/inbound.md).
    credentials_ref     text NOT NULL DEFAULT 'default',
    agent_id            uuid REFERENCES agents(id),  -- the inbound agent; NULL = not linked
    -- Exotel signs nothing: its flow URL carries this secret (docs/inbound.md). Rotated by
    -- every /inbound/setup, so an unlinked-then-relinked number's old URL stops working.
    inbound_secret      text NOT NULL DEFAULT encode(gen_random_bytes(24), 'hex'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX phone_numbers_live ON phone_numbers (telephony_provider, phone_number)
    WHERE deleted_at IS NULL;
CREATE INDEX phone_numbers_account ON phone_numbers (account_id, created_at DESC)
    WHERE deleted_at IS NULL;

-- The credential set of an inbound call's number (phone_numbers.credentials_ref), which its
-- REST hang-up must use too. NULL: the carrier's default set (every outbound call).
ALTER TABLE call_attempts ADD COLUMN credentials_ref text;

-- task_config.inbound_limit counts a caller's earlier inbound calls to the agent.
CREATE INDEX executions_inbound_caller ON executions (agent_id, from_number)
    WHERE call_type = 'inbound';

-- An inbound call's acceptance, in one statement (the gateway's inbound webhook, docs/inbound.md):
--   'existing'      the carrier repeated its webhook for a call already accepted: the same
--                   execution and media token, nothing written;
--   'inbound_limit' the caller already made p_limit inbound calls to the agent (p_limit < 0:
--                   unlimited; the gateway passes -1 for whitelisted callers);
--   'created'       the execution (in-progress, call_type inbound), its attempt 1 (answered now)
--                   and its outbox event, committed together.
-- Advisory locks serialize two webhooks of one call, and two calls of one caller to one agent,
-- so neither a repeated webhook nor simultaneous calls slip past the checks.
CREATE FUNCTION inbound_accept(p_id uuid, p_account uuid, p_agent uuid, p_provider text,
                               p_call_id text, p_from text, p_to text, p_user_data jsonb,
                               p_telephony jsonb, p_media_token text, p_callback_token text,
                               p_limit integer, p_credentials_ref text)
RETURNS TABLE (outcome text, execution_id uuid, media_token text, event_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_prior bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('inbound:' || p_provider || ':' || p_call_id));
    RETURN QUERY SELECT 'existing'::text, ca.execution_id, ca.media_token, NULL::bigint
        FROM call_attempts ca
        WHERE ca.provider = p_provider AND ca.provider_call_id = p_call_id
        LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    IF p_limit >= 0 THEN
        PERFORM pg_advisory_xact_lock(hashtext('inbound-limit:' || p_agent || ':' || p_from));
        SELECT count(*) INTO v_prior FROM executions e
            WHERE e.agent_id = p_agent AND e.from_number = p_from AND e.call_type = 'inbound';
        IF v_prior >= p_limit THEN
            RETURN QUERY SELECT 'inbound_limit'::text, NULL::uuid, NULL::text, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    INSERT INTO executions (id, account_id, agent_id, status, call_type, provider, to_number,
                            from_number, user_data, telephony_data, attempt)
        VALUES (p_id, p_account, p_agent, 'in-progress', 'inbound', p_provider, p_to, p_from,
                p_user_data, p_telephony, 1);
    INSERT INTO call_attempts (execution_id, attempt, provider, provider_call_id, status,
                               media_token, callback_token, answered_at, credentials_ref)
        VALUES (p_id, 1, p_provider, p_call_id, 'in-progress', p_media_token, p_callback_token,
                now(), NULLIF(p_credentials_ref, 'default'));
    RETURN QUERY INSERT INTO execution_events (execution_id, account_id, status)
        VALUES (p_id, p_account, 'in-progress')
        RETURNING 'created'::text, p_id, p_media_token, id;
END
$$;
