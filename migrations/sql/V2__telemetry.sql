-- Observability (issue 3).
-- The W3C trace context of the request that created a change: messages about the change that are
-- not sent from inside its trace (the next queued change started, a reaped step run again) are
-- sent from a span continuing this one, so one change stays one trace.
ALTER TABLE changes ADD COLUMN traceparent text;

-- /metrics counts the steps that are not final by status on every scrape; this keeps that cheap
-- however many finished steps the table holds.
CREATE INDEX steps_not_final ON steps (status_code)
    WHERE status_code IN ('pending', 'queued', 'running', 'waiting');
