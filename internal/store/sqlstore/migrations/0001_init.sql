-- Initial schema. Portable SQL: it must run unchanged on SQLite and PostgreSQL.
-- Times are microseconds since the Unix epoch (UTC), NULL when absent.
CREATE TABLE devices (
	mac TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	ip TEXT NOT NULL DEFAULT '',
	type TEXT NOT NULL,
	model TEXT NOT NULL DEFAULT '',
	is_virtual INTEGER NOT NULL DEFAULT 0,
	owner TEXT NOT NULL DEFAULT '',
	boot_mode TEXT NOT NULL DEFAULT '',
	booted INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	last_seen BIGINT
);

CREATE TABLE settings (
	mac TEXT NOT NULL REFERENCES devices (mac) ON DELETE CASCADE,
	name TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (mac, name)
);

CREATE TABLE links (
	node_mac TEXT PRIMARY KEY REFERENCES devices (mac) ON DELETE CASCADE,
	switch_mac TEXT NOT NULL REFERENCES devices (mac) ON DELETE CASCADE,
	port INTEGER NOT NULL
);

CREATE TABLE poe_off (
	switch_mac TEXT NOT NULL REFERENCES devices (mac) ON DELETE CASCADE,
	port INTEGER NOT NULL,
	reason TEXT NOT NULL,
	at BIGINT NOT NULL,
	PRIMARY KEY (switch_mac, port)
);

CREATE TABLE reboots (
	id TEXT PRIMARY KEY,
	batch TEXT NOT NULL,
	requester TEXT NOT NULL,
	cause TEXT NOT NULL,
	node_mac TEXT NOT NULL,
	node_name TEXT NOT NULL,
	method TEXT NOT NULL,
	ok INTEGER NOT NULL,
	requested_at BIGINT NOT NULL,
	ack_at BIGINT,
	finished_at BIGINT NOT NULL
);

CREATE INDEX reboots_node ON reboots (node_mac, requested_at);
CREATE INDEX reboots_batch ON reboots (batch);

CREATE TABLE reboot_attempts (
	reboot_id TEXT NOT NULL REFERENCES reboots (id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,
	method TEXT NOT NULL,
	error TEXT NOT NULL,
	started_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL,
	PRIMARY KEY (reboot_id, seq)
);
