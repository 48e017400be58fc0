"""Named schema migrations, applied in order and recorded in ``schema_migrations``.

A migration is never edited once released: add a new one instead, so every database
in the field can be brought forward from whatever version it holds.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_core",
        """
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
        """,
    ),
    (
        "0002_policy",
        """
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
        """,
    ),
    (
        "0003_alerts",
        """
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
        """,
    ),
    (
        "0004_sensor",
        """
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
        """,
    ),
    (
        "0005_violation_targets",
        """
        -- A sweep's violations are one row per (source, rule): dst_ip is NULL and
        -- targets counts the hosts it probed.
        ALTER TABLE violations ADD COLUMN targets INTEGER NOT NULL DEFAULT 1;
        """,
    ),
]
