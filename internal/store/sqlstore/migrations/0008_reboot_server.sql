-- The server instance that runs a reboot: the id kept in its data
-- directory. A starting server marks interrupted only the running rows
-- of its own (its previous instance's), not those of another server
-- that shares the database and is still running them. Rows written
-- before this version carry none ('') and any server's start marks them
-- interrupted, as before.
ALTER TABLE reboots ADD COLUMN server TEXT NOT NULL DEFAULT '';
