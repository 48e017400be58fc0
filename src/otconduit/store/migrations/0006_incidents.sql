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
