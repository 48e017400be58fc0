-- A sweep's violations are one row per (source, rule): dst_ip is NULL and
-- targets counts the hosts it probed.
ALTER TABLE violations ADD COLUMN targets BIGINT NOT NULL DEFAULT 1;
