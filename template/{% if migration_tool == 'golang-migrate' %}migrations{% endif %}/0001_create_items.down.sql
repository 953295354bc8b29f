BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- Undoing the first migration removes the resource it created, data included.
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS items;

COMMIT;
