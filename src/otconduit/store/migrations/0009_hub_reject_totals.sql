-- Hub: refusals counted per site and reason for good; hub_rejects keeps only the most
-- recent rows (a site flooding the hub with bad messages cannot grow the database).
CREATE TABLE hub_reject_totals (
    site TEXT NOT NULL,                -- '' when the topic named no site
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (site, reason)
);
INSERT INTO hub_reject_totals (site, reason, count)
    SELECT coalesce(site, ''), reason, count(*) FROM hub_rejects GROUP BY coalesce(site, ''), reason;
CREATE INDEX hub_rejects_at ON hub_rejects (at);
