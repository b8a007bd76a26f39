-- Conversation (issue 4): what the media-pipeline leaves behind while a call talks.

-- One row per turn, written as the turn happens (a user turn when its transcript is final, an
-- assistant turn when it was heard in full or cut by a barge-in). seq orders the turns of one
-- attempt's conversation; a re-write of the same turn (its final text) replaces the row.
CREATE TABLE transcript_turns (
    execution_id  uuid NOT NULL,   -- no FK: see executions
    attempt       integer NOT NULL,
    seq           integer NOT NULL,
    role          text NOT NULL CHECK (role IN ('assistant', 'user')),
    content       text NOT NULL,
    start_ms      integer NOT NULL, -- since the media stream started
    end_ms        integer NOT NULL,
    interrupted   boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, attempt, seq)
);

-- Where the pipeline wrote the call's recording (WAV, caller left, agent right); the
-- postprocessor turns it into a signed recording_url.
ALTER TABLE executions ADD COLUMN recording_path text;
