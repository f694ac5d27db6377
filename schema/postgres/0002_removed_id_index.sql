-- save_delta looks up the newest record of each id it is given, live or not (a
-- retried delta must find ids it tombstoned). A live row is the newest record
-- of its id and is found through entries_live_entry_id; this index holds only
-- the rows a later version replaced or tombstoned, so an append no longer
-- maintains a third index on the entry id: two index entries fewer per turn,
-- in WAL and in server time.
CREATE INDEX entries_removed_entry_id ON entries (session_id, entry_id, seq)
    WHERE removed_in_version IS NOT NULL;
DROP INDEX entries_entry_id;
-- entries_live_pos serves reads of a session's live rows in order, which say
-- `pos >= 0` (always true) to match it. The id lookups do not, so the index
-- is out of their reach: planned without statistics, they took it with a
-- filter on the id (every live row of the session) over entries_live_entry_id.
DROP INDEX entries_live_pos;
CREATE INDEX entries_live_pos ON entries (session_id, pos)
    WHERE removed_in_version IS NULL AND pos >= 0;
-- On a large table these index builds block writes while they run: migrate at
-- a quiet time.
