-- Reboots recorded as they happen: a row is written when a node's
-- pipeline starts (state 'running') and completed when its outcome is
-- known ('done'); rows a server left running when it died are marked
-- 'interrupted' by the next start. Attempts keep their error code.
-- Rows written before this version are complete: they default to 'done'.
ALTER TABLE reboots ADD COLUMN state TEXT NOT NULL DEFAULT 'done';

CREATE INDEX reboots_state ON reboots (state);

ALTER TABLE reboot_attempts ADD COLUMN code TEXT NOT NULL DEFAULT '';
