-- A campaign started with --force (on nodes owned by others) keeps that
-- right for its whole run: the engine checks the nodes' owners before
-- each iteration under the rules of its start.
ALTER TABLE campaigns ADD COLUMN force_owners INTEGER NOT NULL DEFAULT 0;
