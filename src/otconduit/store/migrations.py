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
    (
        "0006_incidents",
        """
        -- Incidents the console numbered (INC-<id>, in the order their first event
        -- happened when first seen), kept so that numbers, owners and status survive a
        -- reload. key names the incident's first event: alert:<id> or machine:<tag>@<ns>.
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
            key TEXT NOT NULL UNIQUE,
            first_ts INTEGER NOT NULL,         -- ns
            owner TEXT,                        -- a console user name
            status TEXT NOT NULL DEFAULT 'open',  -- open | investigating | resolved
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        -- Who changed an incident's owner or status, when, from what to what.
        CREATE TABLE incident_history (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            user TEXT NOT NULL,
            field TEXT NOT NULL,               -- owner | status
            old TEXT,
            new TEXT,
            comment TEXT
        );
        CREATE INDEX incident_history_incident ON incident_history (incident_id);
        -- The overview lists the alerts that happened last.
        CREATE INDEX alerts_last_seen ON alerts (last_seen);
        """,
    ),
    (
        "0007_advisories",
        """
        -- CSAF advisories (`conduit advisories import|sync`), one row per publisher and
        -- tracking id: a newer version of a document replaces the older.
        CREATE TABLE advisories (
            id INTEGER PRIMARY KEY,
            namespace TEXT NOT NULL,           -- the publisher's namespace URL
            publisher TEXT NOT NULL,
            tracking_id TEXT NOT NULL COLLATE NOCASE,
            version TEXT NOT NULL,
            doc_status TEXT,                   -- final | interim | draft
            title TEXT NOT NULL,
            initial_release TEXT,
            current_release TEXT,
            url TEXT,
            cves TEXT NOT NULL,                -- JSON list
            cvss REAL,                         -- highest base score
            vector TEXT,
            vendors TEXT NOT NULL,             -- JSON list, as written
            source TEXT NOT NULL,              -- file, archive member or URL
            sha256 TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            document BLOB NOT NULL,            -- the document as published, zlib
            UNIQUE (namespace, tracking_id)
        );
        -- One row per product, status and vendor key: what matching reads.
        CREATE TABLE advisory_products (
            advisory_id INTEGER NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
            product_id TEXT NOT NULL,
            status TEXT NOT NULL,              -- known_affected | fixed | known_not_affected
            vendor_key TEXT NOT NULL,          -- normalised vendor, '' when none is named
            vendor TEXT,
            family TEXT,
            product TEXT,
            version TEXT,                      -- version or range as written
            version_source TEXT,
            full_name TEXT NOT NULL,
            part_numbers TEXT NOT NULL,        -- JSON list, as written
            cpe TEXT,
            purl TEXT,
            cves TEXT NOT NULL,                -- JSON list
            cvss REAL,
            vector TEXT,
            remediation TEXT
        );
        CREATE INDEX advisory_products_vendor ON advisory_products (vendor_key);
        CREATE INDEX advisory_products_advisory ON advisory_products (advisory_id);
        -- What `conduit advisories sync` fetched: feeds and indexes with their
        -- validators, documents with the time the feed gave them.
        CREATE TABLE advisory_sync (
            url TEXT PRIMARY KEY,
            kind TEXT NOT NULL,                -- feed | index | document
            updated TEXT,
            etag TEXT,
            last_modified TEXT,
            outcome TEXT,                      -- imported | unchanged | rejected
            checked_at TEXT NOT NULL
        );
        """,
    ),
]
