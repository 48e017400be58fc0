-- Findings of `conduit violations` / `analyze --policy`. Re-checking a policy
-- replaces its rows, and re-analysing a capture drops the rows it evidenced.
CREATE TABLE violations (
    id INTEGER PRIMARY KEY,
    policy TEXT NOT NULL,              -- the policy's plant name
    capture_id INTEGER REFERENCES captures(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    src_ip TEXT,
    dst_ip TEXT,
    src_zone TEXT,
    dst_zone TEXT,
    protocol TEXT,
    operation TEXT,
    conduit TEXT,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TEXT,
    last_seen TEXT,
    frame INTEGER,
    checked_at TEXT NOT NULL
);
CREATE INDEX violations_policy ON violations (policy, capture_id);
