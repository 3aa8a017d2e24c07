-- The frame index of cefiot's sink on PostgreSQL, version 1.
--
-- Times are Unix nanoseconds (bigint): the order of frames and events is
-- (time, id), exactly as in the embedded index, and page tokens carry it.

CREATE TABLE frames (
    frame_id     text PRIMARY KEY,
    site         text NOT NULL,
    camera_id    text NOT NULL,
    capture_ns   bigint NOT NULL,
    motion_score double precision NOT NULL,
    event_id     text,
    size_bytes   bigint NOT NULL,
    path         text NOT NULL,
    thumb_path   text,
    -- The whole entry, in the same JSON as the embedded index's record.
    meta         jsonb NOT NULL
);
-- Search by camera and time, by time, and by event.
CREATE INDEX frames_by_camera_time ON frames (camera_id, capture_ns, frame_id);
CREATE INDEX frames_by_time ON frames (capture_ns, frame_id);
CREATE INDEX frames_by_event ON frames (event_id, capture_ns, frame_id) WHERE event_id IS NOT NULL;

-- Events, aggregated from their frames as they are indexed.
CREATE TABLE events (
    event_id      text PRIMARY KEY,
    site          text NOT NULL,
    camera_id     text NOT NULL,
    start_ns      bigint NOT NULL,
    end_ns        bigint NOT NULL,
    ended         boolean NOT NULL,
    frames        bigint NOT NULL,
    size_bytes    bigint NOT NULL,
    peak_score    double precision NOT NULL,
    best_frame_id text NOT NULL,
    boxes         jsonb NOT NULL,
    -- The union of every box of its frames; NULL while it has none.
    region_x0 integer, region_y0 integer, region_x1 integer, region_y1 integer
);
CREATE INDEX events_by_camera_start ON events (camera_id, start_ns, event_id);
CREATE INDEX events_by_start ON events (start_ns, event_id);

-- Per-camera counters; the totals are their sums (a few rows), so that
-- replicas indexing different cameras never wait on one counter row.
CREATE TABLE cameras (
    camera_id text PRIMARY KEY,
    frames    bigint NOT NULL DEFAULT 0,
    bytes     bigint NOT NULL DEFAULT 0,
    events    bigint NOT NULL DEFAULT 0,
    expired   bigint NOT NULL DEFAULT 0
);

-- Frames retention deleted: a replay of one is not stored again.
CREATE TABLE deleted_frames (
    frame_id   text PRIMARY KEY,
    deleted_at timestamptz NOT NULL
);
