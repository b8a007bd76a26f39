-- Post-processing (issue 5): what the postprocessor reads and writes after call-disconnected.

-- The postprocessor's sweep: executions waiting for post-processing (few at any time).
CREATE INDEX executions_disconnected ON executions (updated_at)
    WHERE status = 'call-disconnected';

-- Executions that ended without a conversation and have no cost written yet: the sweep sets
-- their cost_breakdown to zeros. Rows leave the index once priced, so it stays small.
CREATE INDEX executions_unpriced ON executions (updated_at)
    WHERE cost_breakdown IS NULL
      AND status IN ('no-answer', 'busy', 'failed', 'canceled', 'stopped', 'error', 'balance-low');

-- One debit per execution, written in the same transaction that moves the execution to
-- completed: the primary key makes a repeated finalisation (a crash, a second replica) unable
-- to debit twice, and the shared transaction makes a crash unable to skip the debit.
CREATE TABLE wallet_ledger (
    execution_id  uuid PRIMARY KEY,          -- no FK: see executions
    account_id    uuid NOT NULL,
    amount        numeric(14, 4) NOT NULL,   -- debited, in the wallet's currency units
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallet_ledger_account ON wallet_ledger (account_id, created_at);
