-- Many sites (issue 14): the edge side of the uplink and the hub tables.
-- Portable between SQLite and PostgreSQL: BIGINT for nanoseconds and counters,
-- TEXT for JSON, composite natural keys instead of autoincrement ids.

-- Edge: the next uplink message sequence, per site name, kept across restarts so a
-- restarted sensor never reuses a message id.
CREATE TABLE uplink_state (
    site TEXT PRIMARY KEY,
    next_seq BIGINT NOT NULL
);

-- Edge: messages built but not yet safe in the store-and-forward buffer disk tier
-- (or delivered). Written in the same transaction as the cursors they advance, so a
-- kill between building and queueing loses nothing: the next start queues them again.
CREATE TABLE uplink_outbox (
    site TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (site, seq)
);

-- Edge: how far each kind has been published (alert change_seq, op_chunks id).
CREATE TABLE uplink_cursors (
    site TEXT NOT NULL,
    name TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (site, name)
);

-- Edge: the digest of each state-kind row last published (assets, conversations,
-- violations), so only rows that changed are sent again.
CREATE TABLE uplink_digests (
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (site, kind, key)
);

-- Hub: one row per site that ever sent an accepted message; health as the site reports it.
CREATE TABLE hub_sites (
    site TEXT PRIMARY KEY,
    first_message_at TEXT NOT NULL,
    last_message_at TEXT NOT NULL,     -- hub clock, when the last message was applied
    last_sent_at TEXT,                 -- the site clock, from the envelope of that message
    last_seq BIGINT NOT NULL DEFAULT 0,
    messages BIGINT NOT NULL DEFAULT 0,   -- applied
    duplicates BIGINT NOT NULL DEFAULT 0, -- seen again (replays), not applied
    delay_ms BIGINT,                   -- hub receive time - site send time, last message
    health TEXT                        -- JSON: the last health message of the site
);

-- Hub: every applied message, by id; the primary key is what makes replays harmless.
CREATE TABLE hub_messages (
    site TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (site, seq)
);

-- Hub: what was refused (unknown site, site mismatch, malformed, oversized, skew).
CREATE TABLE hub_rejects (
    at TEXT NOT NULL,
    site TEXT,                         -- the site named by the topic, when it names one
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX hub_rejects_site ON hub_rejects (site, at);

CREATE TABLE hub_assets (
    site TEXT NOT NULL,
    ip TEXT NOT NULL,
    vlan BIGINT NOT NULL,
    mac TEXT,
    name TEXT,
    vendor TEXT,
    model TEXT,
    roles TEXT,                        -- comma-separated
    protocols TEXT,                    -- comma-separated
    first_seen BIGINT,
    last_seen BIGINT,
    packets_sent BIGINT NOT NULL DEFAULT 0,
    packets_received BIGINT NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (site, ip, vlan)
);

CREATE TABLE hub_conversations (
    site TEXT NOT NULL,
    transport TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    server_ip TEXT NOT NULL,
    server_port BIGINT NOT NULL,
    vlan BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    connections BIGINT NOT NULL DEFAULT 0,
    packets BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    first_seen BIGINT,
    last_seen BIGINT,
    functions TEXT,                    -- JSON {function: count}
    updated_at TEXT NOT NULL,
    PRIMARY KEY (site, transport, client_ip, server_ip, server_port, vlan, protocol)
);

CREATE TABLE hub_alerts (
    site TEXT NOT NULL,
    alert_id BIGINT NOT NULL,          -- the alert id at the site
    rule TEXT NOT NULL,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    severity BIGINT NOT NULL,
    techniques TEXT,
    src_ip TEXT,
    dst_ip TEXT,
    protocol TEXT,
    operation TEXT,
    summary TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    count BIGINT NOT NULL,
    status TEXT NOT NULL,
    change_seq BIGINT NOT NULL,        -- at the site; a lower one never overwrites a higher
    updated_at TEXT NOT NULL,
    PRIMARY KEY (site, alert_id)
);
CREATE INDEX hub_alerts_status ON hub_alerts (status, severity);

CREATE TABLE hub_violations (
    site TEXT NOT NULL,
    policy TEXT NOT NULL,
    rule TEXT NOT NULL,
    src_ip TEXT NOT NULL,
    dst_ip TEXT NOT NULL,
    protocol TEXT NOT NULL,
    operation TEXT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    first_seen TEXT,
    last_seen TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (site, policy, rule, src_ip, dst_ip, protocol, operation)
);

-- Operations per conversation per minute: totals as the site last stated them.
CREATE TABLE hub_op_minutes (
    site TEXT NOT NULL,
    transport TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    server_ip TEXT NOT NULL,
    server_port BIGINT NOT NULL,
    vlan BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    minute BIGINT NOT NULL,            -- unix seconds of the start of the minute
    operations BIGINT NOT NULL,
    PRIMARY KEY (site, transport, client_ip, server_ip, server_port, vlan, protocol, minute)
);
