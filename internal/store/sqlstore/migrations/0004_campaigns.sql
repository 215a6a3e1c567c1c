-- Campaigns of repeated reboots: the campaign, its nodes, one row per
-- iteration of each node, and the quarantine that keeps failing nodes
-- out of later campaigns. Durations are microseconds, times microseconds
-- since the epoch. Portable SQL (SQLite and PostgreSQL).
CREATE TABLE campaigns (
	seq BIGINT PRIMARY KEY,
	name TEXT NOT NULL,
	requester TEXT NOT NULL,
	node_set TEXT NOT NULL,
	mode TEXT NOT NULL,
	repeat_count INTEGER NOT NULL,
	hard INTEGER NOT NULL,
	until_done INTEGER NOT NULL,
	hold BIGINT NOT NULL,
	done_timeout BIGINT NOT NULL,
	boot_timeout BIGINT NOT NULL,
	quarantine INTEGER NOT NULL,
	state TEXT NOT NULL,
	round INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	finished_at BIGINT
);

CREATE INDEX campaigns_state ON campaigns (state);

CREATE TABLE campaign_nodes (
	campaign BIGINT NOT NULL REFERENCES campaigns (seq) ON DELETE CASCADE,
	mac TEXT NOT NULL,
	name TEXT NOT NULL,
	model TEXT NOT NULL,
	state TEXT NOT NULL,
	iteration INTEGER NOT NULL,
	booted INTEGER NOT NULL,
	failed INTEGER NOT NULL,
	failed_in_row INTEGER NOT NULL,
	reason TEXT NOT NULL,
	PRIMARY KEY (campaign, mac)
);

CREATE TABLE campaign_boots (
	campaign BIGINT NOT NULL,
	mac TEXT NOT NULL,
	name TEXT NOT NULL,
	iteration INTEGER NOT NULL,
	reboot_id TEXT NOT NULL,
	prev_boot_id TEXT NOT NULL,
	requested_at BIGINT NOT NULL,
	ack_at BIGINT,
	down_at BIGINT,
	booted_at BIGINT,
	done_at BIGINT,
	method TEXT NOT NULL,
	node_method TEXT NOT NULL,
	fallback INTEGER NOT NULL,
	rescued INTEGER NOT NULL,
	boot_id TEXT NOT NULL,
	status INTEGER NOT NULL,
	metrics TEXT NOT NULL,
	outcome TEXT NOT NULL,
	error TEXT NOT NULL,
	code TEXT NOT NULL,
	PRIMARY KEY (campaign, mac, iteration),
	FOREIGN KEY (campaign, mac) REFERENCES campaign_nodes (campaign, mac) ON DELETE CASCADE
);

CREATE TABLE quarantine (
	mac TEXT PRIMARY KEY REFERENCES devices (mac) ON DELETE CASCADE,
	campaign TEXT NOT NULL,
	reason TEXT NOT NULL,
	since BIGINT NOT NULL
);
