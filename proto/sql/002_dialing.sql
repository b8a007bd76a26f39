-- Dialing (issue 3): one row per dial attempt, and batches of contacts.

-- An attempt is claimed by INSERT ... ON CONFLICT DO NOTHING before the carrier is asked to dial,
-- so a repeated job (crash, redelivery) never dials the same attempt twice.
CREATE TABLE call_attempts (
    execution_id       uuid NOT NULL,
    attempt            integer NOT NULL,
    provider           text NOT NULL,
    provider_call_id   text,
    status             text,              -- last status the carrier reported
    outcome            text,              -- the execution status this attempt ended in
    media_token        text NOT NULL,     -- authorises the carrier's media WebSocket
    callback_token     text NOT NULL,     -- authorises unsigned (Exotel) callbacks
    dial_requested_at  timestamptz NOT NULL DEFAULT now(),
    answered_at        timestamptz,
    ended_at           timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, attempt)
);
CREATE INDEX call_attempts_provider_call ON call_attempts (provider, provider_call_id);

-- Executions the reconciler and the sweep look at: few rows at any time, partial indexes.
CREATE INDEX executions_dialing ON executions (updated_at)
    WHERE status IN ('initiated', 'ringing');
CREATE INDEX executions_waiting ON executions (updated_at)
    WHERE status = 'queued';

CREATE TABLE batches (
    id                  text PRIMARY KEY,  -- 32 hex, as Bolna's batch ids
    account_id          uuid NOT NULL REFERENCES accounts(id),
    agent_id            uuid NOT NULL REFERENCES agents(id),
    status              text NOT NULL DEFAULT 'created',
    file_name           text,
    from_phone_numbers  jsonb,
    retry_config        jsonb,
    scheduled_at        timestamptz,
    total_contacts      integer NOT NULL DEFAULT 0,
    valid_contacts      integer NOT NULL DEFAULT 0,
    invalid_rows        jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE INDEX batches_agent ON batches (agent_id, created_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE batch_contacts (
    batch_id       text NOT NULL REFERENCES batches(id),
    row_number     integer NOT NULL,
    contact_number text NOT NULL,
    variables      jsonb NOT NULL DEFAULT '{}'::jsonb,
    execution_id   uuid,
    PRIMARY KEY (batch_id, row_number)
);
CREATE INDEX executions_batch ON executions (batch_id) WHERE batch_id IS NOT NULL;
