-- Alerts: one row per (rule, source, destination) and time window, with a count.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: SIEMs key on it
    rule TEXT NOT NULL,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    severity INTEGER NOT NULL,         -- 0 info .. 4 critical
    techniques TEXT NOT NULL,          -- JSON list of ATT&CK for ICS ids
    src_ip TEXT,
    dst_ip TEXT,
    protocol TEXT,
    operation TEXT,                    -- function / command of the first finding
    summary TEXT NOT NULL,
    context TEXT,                      -- JSON: zones, policy verdict, notes
    first_seen INTEGER NOT NULL,       -- ns
    last_seen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',  -- open | acknowledged | closed
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    change_seq INTEGER NOT NULL DEFAULT 0  -- bumped on every change (export cursor)
);
CREATE INDEX alerts_key ON alerts (rule, src_ip, dst_ip, last_seen);
CREATE INDEX alerts_status ON alerts (status, severity);

-- What each capture contributed, so re-detecting a capture replaces, never adds.
CREATE TABLE alert_sources (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    capture_sha256 TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (alert_id, capture_sha256)
);
CREATE INDEX alert_sources_capture ON alert_sources (capture_sha256);

-- Evidence: frames of the capture and the decoded operation (bounded per alert).
CREATE TABLE alert_evidence (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    capture_sha256 TEXT NOT NULL,
    capture_path TEXT NOT NULL,
    frames TEXT NOT NULL,              -- JSON list of frame numbers
    ts INTEGER,
    record TEXT                        -- JSON: decoded operation or finding detail
);
CREATE INDEX alert_evidence_alert ON alert_evidence (alert_id);

CREATE TABLE alert_history (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    comment TEXT
);

CREATE TABLE baselines (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    captures TEXT NOT NULL,            -- JSON list of capture sha256 learned from
    until_ts INTEGER,                  -- learning period end (ns), if limited
    data TEXT NOT NULL                 -- JSON, see otconduit.detect.baseline
);

-- Incremental SIEM export: the highest alert change exported per sink.
CREATE TABLE export_cursors (
    sink TEXT PRIMARY KEY,
    last_change INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX alerts_change ON alerts (change_seq);
-- Monotonic change counter (max(change_seq)+1 would reuse numbers after deletes).
CREATE TABLE alert_changes (n INTEGER NOT NULL);
INSERT INTO alert_changes VALUES (0);
