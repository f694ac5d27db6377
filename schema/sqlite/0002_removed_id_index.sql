-- save_delta looks up the newest record of each id it is given, live or not (a
-- retried delta must find ids it tombstoned). Live rows are found through
-- entries_live_entry_id; this index holds only the rows a later version
-- replaced or tombstoned, so an append no longer maintains a third index on
-- the entry id: one index page fewer per entry in each commit.
CREATE INDEX entries_removed_entry_id ON entries (session_id, entry_id, seq)
    WHERE removed_in_version IS NOT NULL;
DROP INDEX entries_entry_id;
