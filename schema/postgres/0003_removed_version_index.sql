-- changes reads the records a version removed. This index holds only rows a
-- later version replaced or tombstoned (an append never writes it), so a turn's
-- WAL does not grow; the records a version added are found by a binary search
-- over the primary key (added_in_version never falls with seq). Its predicate
-- says `> 0` (always true of a stamped row), which only the changes query
-- repeats: the id lookups say `IS NOT NULL`, so the index is out of their reach
-- (planned without statistics, they would take it and read every replaced row).
CREATE INDEX entries_removed_version ON entries (session_id, removed_in_version)
    WHERE removed_in_version > 0;
-- On a large table this index build blocks writes while it runs: migrate at a
-- quiet time.
