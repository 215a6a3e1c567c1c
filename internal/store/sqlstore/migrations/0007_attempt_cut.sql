-- What the power source said of each hard attempt's cut: cut_verified is
-- 1 when it read the power back off before power returned, 0 when it
-- still read it on or could not be asked (a power.command), NULL when
-- nothing was said (soft attempts, rows written before this version);
-- cut says how, or why not.
ALTER TABLE reboot_attempts ADD COLUMN cut_verified INTEGER;

ALTER TABLE reboot_attempts ADD COLUMN cut TEXT NOT NULL DEFAULT '';
