-- Parley foundation schema: accounts, keys, agents, executions, the outbox, logs, idempotency.
-- Every row that a client can see belongs to an account; every query filters on account_id.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Time-ordered UUIDs (version 7 layout: 48-bit Unix ms, then random bits). Executions are
-- inserted at a high rate; random v4 keys scatter primary-key inserts over the whole index and
-- multiply WAL full-page writes, while v7 keys append at its right edge.
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

CREATE TABLE accounts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL,
    email           text NOT NULL,
    wallet          numeric(14, 4) NOT NULL DEFAULT 0,      -- in the account's currency units
    concurrency_max integer NOT NULL DEFAULT 10 CHECK (concurrency_max >= 0),
    webhook_secret  text NOT NULL DEFAULT encode(gen_random_bytes(32), 'hex'),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored as hex SHA-256 of the whole key; the clear key is shown once, at creation.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts(id),
    key_hash    text NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE agents (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts(id),
    agent_name    text NOT NULL,
    agent_type    text NOT NULL DEFAULT 'other',
    agent_status  text NOT NULL DEFAULT 'processed',
    config        jsonb NOT NULL,   -- agent_config as accepted (validated) by the api
    prompts       jsonb NOT NULL,   -- agent_prompts
    webhook_url   text,
    -- The conversation task's tools_config.input.provider, kept beside the config so that
    -- POST /call does not parse the config (which may be large and TOASTed) on every call.
    telephony_provider text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX agents_account ON agents (account_id, created_at DESC) WHERE deleted_at IS NULL;

-- executions and execution_events carry no foreign keys on purpose: POST /call inserts both on
-- its hot path, and every FK check locks the parent row (FOR KEY SHARE), which under concurrent
-- calls for one agent turns into MultiXact churn (measured: +20-45% insert throughput without).
-- Integrity holds by construction: the only insert takes account_id and agent_id from the agent
-- row it selects in the same statement, and events are written with or after their execution.
CREATE TABLE executions (
    id                     uuid PRIMARY KEY DEFAULT uuid_v7(),
    account_id             uuid NOT NULL,
    agent_id               uuid NOT NULL,
    batch_id               text,
    status                 text NOT NULL,
    call_type              text NOT NULL DEFAULT 'outbound',
    provider               text,
    to_number              text NOT NULL,
    from_number            text,
    user_data              jsonb,
    agent_data             jsonb,
    retry_config           jsonb,
    bypass_call_guardrails boolean NOT NULL DEFAULT false,
    scheduled_at           timestamptz,
    attempt                integer NOT NULL DEFAULT 0,
    conversation_duration  double precision NOT NULL DEFAULT 0,
    total_cost             double precision NOT NULL DEFAULT 0,
    cost_breakdown         jsonb,
    usage_breakdown        jsonb,
    transcript             text,
    extracted_data         jsonb,
    summary                text,
    answered_by_voice_mail boolean NOT NULL DEFAULT false,
    error_message          text,
    telephony_data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    transfer_call_data     jsonb,
    latency_data           jsonb,
    recording_url          text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX executions_agent ON executions (agent_id, created_at DESC);
-- Live calls per account (the concurrency figure). Partial, so inserting a queued call does not
-- touch it: one index fewer on the POST /call path.
CREATE INDEX executions_account_live ON executions (account_id)
    WHERE status IN ('initiated', 'ringing', 'in-progress');

-- The outbox: one row per status change, written in the same statement as the change.
CREATE TABLE execution_events (
    id            bigserial PRIMARY KEY,
    execution_id  uuid NOT NULL,   -- no FK: see executions
    account_id    uuid NOT NULL,
    status        text NOT NULL,
    from_status   text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX execution_events_execution ON execution_events (execution_id, id);

-- Raw component logs of an execution (GET /executions/{id}/log).
CREATE TABLE execution_logs (
    id            bigserial PRIMARY KEY,
    execution_id  uuid NOT NULL REFERENCES executions(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    type          text NOT NULL CHECK (type IN ('request', 'response')),
    component     text NOT NULL,
    provider      text,
    data          text NOT NULL
);
CREATE INDEX execution_logs_execution ON execution_logs (execution_id, id);

-- Idempotency-Key of POST /call: a retry with the same key returns the same execution.
CREATE TABLE idempotency_keys (
    account_id    uuid NOT NULL REFERENCES accounts(id),
    key           text NOT NULL,
    request_hash  text NOT NULL,
    execution_id  uuid NOT NULL REFERENCES executions(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);

CREATE FUNCTION pl_ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The Bolna execution object, as GET /executions/{id} and every webhook send it. One copy of
-- this shape for every service. Fields not known yet are null or 0, as Bolna documents.
CREATE FUNCTION execution_json(e executions) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', e.id,
        'agent_id', e.agent_id,
        'batch_id', e.batch_id,
        'status', e.status,
        'conversation_duration', e.conversation_duration,
        'total_cost', e.total_cost,
        'cost_breakdown', COALESCE(e.cost_breakdown, jsonb_build_object(
            'llm', 0, 'network', 0, 'platform', 0, 'synthesizer', 0, 'transcriber', 0)),
        'usage_breakdown', COALESCE(e.usage_breakdown, jsonb_build_object(
            'synthesizer_characters', 0, 'synthesizer_model', null,
            'transcriber_duration', 0, 'transcriber_model', null,
            'llm_tokens', 0, 'llm_model', '{}'::jsonb)),
        'transcript', e.transcript,
        'extracted_data', e.extracted_data,
        'summary', e.summary,
        'answered_by_voice_mail', e.answered_by_voice_mail,
        'error_message', e.error_message,
        'created_at', pl_ts(e.created_at),
        'updated_at', pl_ts(e.updated_at),
        'scheduled_at', pl_ts(e.scheduled_at),
        'user_data', e.user_data,
        'context_details', e.user_data,
        'telephony_data', jsonb_build_object(
            'duration', e.telephony_data->>'duration',
            'to_number', e.to_number,
            'from_number', e.from_number,
            'recording_url', e.recording_url,
            'hosted_telephony', COALESCE((e.telephony_data->>'hosted_telephony')::boolean, false),
            'provider_call_id', e.telephony_data->>'provider_call_id',
            'call_type', e.call_type,
            'provider', COALESCE(e.telephony_data->>'provider', e.provider),
            'hangup_by', e.telephony_data->>'hangup_by',
            'hangup_reason', e.telephony_data->>'hangup_reason',
            'hangup_provider_code', (e.telephony_data->>'hangup_provider_code')::integer,
            'ring_duration', (e.telephony_data->>'ring_duration')::integer,
            'post_dial_delay', (e.telephony_data->>'post_dial_delay')::integer,
            'to_number_carrier', e.telephony_data->>'to_number_carrier'),
        'transfer_call_data', e.transfer_call_data,
        'batch_run_details', CASE WHEN e.batch_id IS NULL THEN NULL ELSE jsonb_build_object(
            'status', e.status, 'created_at', pl_ts(e.created_at),
            'updated_at', pl_ts(e.updated_at), 'retried', e.attempt) END,
        'latency_data', e.latency_data
    )
$$;

-- An agent as GET /v2/agent/{id} answers it.
CREATE FUNCTION agent_json(a agents) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.id,
        'agent_name', a.agent_name,
        'agent_type', a.agent_type,
        'agent_status', a.agent_status,
        'created_at', pl_ts(a.created_at),
        'updated_at', pl_ts(a.updated_at),
        'agent_welcome_message', a.config->'agent_welcome_message',
        'webhook_url', a.webhook_url,
        'tasks', a.config->'tasks',
        'calling_guardrails', a.config->'calling_guardrails',
        'ingest_source_config', a.config->'ingest_source_config',
        'agent_prompts', a.prompts
    )
$$;
