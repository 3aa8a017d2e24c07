-- Version 2: the kinds of object a detector found in an event's frames
-- (sorted, once each), searchable through a GIN index.
ALTER TABLE events ADD COLUMN labels text[] NOT NULL DEFAULT '{}';
CREATE INDEX events_by_label ON events USING gin (labels);
