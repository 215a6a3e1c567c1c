-- Boot tracking: each node's boot status, the boot that completed each
-- reboot, and the platform log. Portable SQL (SQLite and PostgreSQL).
CREATE TABLE boot_status (
	mac TEXT PRIMARY KEY REFERENCES devices (mac) ON DELETE CASCADE,
	boot_id TEXT NOT NULL,
	booted INTEGER NOT NULL,
	since BIGINT NOT NULL,
	cause TEXT NOT NULL,
	method TEXT NOT NULL,
	last_method TEXT NOT NULL,
	retries_left INTEGER NOT NULL
);

ALTER TABLE reboots ADD COLUMN booted_at BIGINT;

ALTER TABLE reboots ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';

CREATE TABLE platform_log (
	seq BIGINT PRIMARY KEY,
	at BIGINT NOT NULL,
	stream TEXT NOT NULL,
	node TEXT NOT NULL,
	line TEXT NOT NULL
);
