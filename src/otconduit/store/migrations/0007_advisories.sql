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
