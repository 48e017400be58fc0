-- When an alert was first raised (wall clock, ISO 8601 UTC, milliseconds): beside
-- first_seen (packet time) it measures how long detection took.
ALTER TABLE alerts ADD COLUMN detected_at TEXT;

-- A sensor (`conduit sense`): one per interface or followed ring folder. Its
-- traffic is one capture that grows, connections still open at the last
-- checkpoint are counted in a second, "live" capture that each checkpoint
-- replaces, so every total is right at every checkpoint and nothing is counted
-- twice when they end.
CREATE TABLE sensors (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,         -- iface:eth1 or ring:/path
    capture_id INTEGER NOT NULL REFERENCES captures(id),
    live_capture_id INTEGER NOT NULL REFERENCES captures(id),
    interface TEXT,
    ring_dir TEXT NOT NULL,
    state TEXT NOT NULL,               -- running | stopped | failed
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    pid INTEGER,
    cursor TEXT,                       -- JSON: ring file, packets taken, frame
    last_chunk INTEGER NOT NULL DEFAULT 0,  -- op_chunks id at the last checkpoint
    health TEXT                        -- JSON: counters, drops, lag, evictions
);

-- Packets an alert stands on, copied out of the ring before it rotates.
CREATE TABLE evidence_packets (
    capture_sha256 TEXT NOT NULL,
    frame INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    linktype INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (capture_sha256, frame)
);
