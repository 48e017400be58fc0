CREATE TABLE captures (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    format TEXT,
    status TEXT NOT NULL,              -- running | complete | partial
    packets INTEGER NOT NULL DEFAULT 0,
    first_ts INTEGER,
    last_ts INTEGER,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT,
    stats TEXT                         -- JSON: decode counters
);

CREATE TABLE assets (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    vlan INTEGER NOT NULL DEFAULT -1,  -- -1: untagged
    mac TEXT,
    UNIQUE (ip, vlan)
);

-- Per-capture sightings so that re-analysing a capture replaces, never adds.
CREATE TABLE asset_sightings (
    asset_id INTEGER NOT NULL REFERENCES assets(id),
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    mac TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    packets_sent INTEGER NOT NULL DEFAULT 0,
    packets_received INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (asset_id, capture_id)
);

CREATE TABLE asset_attributes (
    asset_id INTEGER NOT NULL REFERENCES assets(id),
    capture_id INTEGER REFERENCES captures(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                -- identity | role | protocol
    name TEXT NOT NULL,                -- vendor, model, plc, modbus/server ...
    value TEXT NOT NULL,
    source TEXT NOT NULL,              -- oui, modbus_43_14, behaviour, policy, user
    confidence REAL NOT NULL,
    evidence TEXT,
    first_seen INTEGER,
    last_seen INTEGER
);
CREATE UNIQUE INDEX asset_attributes_key
    ON asset_attributes (asset_id, kind, name, value, source, ifnull(capture_id, 0));

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    transport TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    server_ip TEXT NOT NULL,
    server_port INTEGER NOT NULL,
    vlan INTEGER NOT NULL DEFAULT -1,
    protocol TEXT NOT NULL,
    UNIQUE (transport, client_ip, server_ip, server_port, vlan, protocol)
);

CREATE TABLE conversation_stats (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    connections INTEGER NOT NULL DEFAULT 0,
    packets_c2s INTEGER NOT NULL DEFAULT 0,
    packets_s2c INTEGER NOT NULL DEFAULT 0,
    bytes_c2s INTEGER NOT NULL DEFAULT 0,
    bytes_s2c INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    functions TEXT,                    -- JSON {function: count}
    PRIMARY KEY (conversation_id, capture_id)
);

-- Operations, column-packed per conversation (see otconduit.store.opchunks).
CREATE TABLE op_chunks (
    id INTEGER PRIMARY KEY,
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX op_chunks_capture ON op_chunks (capture_id);
CREATE INDEX op_chunks_conv ON op_chunks (conversation_id, first_ts);

CREATE TABLE problems (
    id INTEGER PRIMARY KEY,
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    frame INTEGER,
    layer TEXT NOT NULL,
    protocol TEXT,
    reason TEXT NOT NULL,
    src_ip TEXT,
    dst_ip TEXT
);
CREATE INDEX problems_capture ON problems (capture_id);

CREATE TABLE problem_counts (
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    layer TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (capture_id, layer, reason)
);
