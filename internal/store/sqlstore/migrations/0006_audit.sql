-- The audit trail: one row per state-changing API call (who, from where,
-- when, what, the answer's status); no request body.
CREATE TABLE audit_log (
	seq BIGINT PRIMARY KEY,
	at BIGINT NOT NULL,
	user_name TEXT NOT NULL,
	source TEXT NOT NULL,
	method TEXT NOT NULL,
	route TEXT NOT NULL,
	target TEXT NOT NULL,
	status INTEGER NOT NULL
);
