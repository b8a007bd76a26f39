-- Indexes that keep every prepared statement on its key whatever the planner's statistics say
-- (services plan their statements once per connection, generically: common/db.c).

-- A carrier's call id leads: with (provider, provider_call_id), a plan made while the table was
-- small or not yet analyzed used this index for the gateway's callback statement, which names
-- the provider beside the primary key, and walked every attempt of that carrier on each callback
-- (bench-dial: 3.2 million index entries read for 1,000 calls). Lookups by carrier and call id
-- (inbound_accept) use it as before.
CREATE INDEX call_attempts_call_id ON call_attempts (provider_call_id, provider);
DROP INDEX call_attempts_provider_call;

-- The scheduler's sweep of scheduled calls whose dial job went missing read the whole executions
-- table on every pass; scheduled calls are few at any time.
CREATE INDEX executions_scheduled ON executions (scheduled_at) WHERE status = 'scheduled';
