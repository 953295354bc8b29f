-- One transaction per migration, with bounded waits: a migration that cannot
-- take its lock gives up instead of queueing every query on the table behind it.
BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE TABLE IF NOT EXISTS items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name varchar(200) NOT NULL,
    description varchar(2000),
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMIT;
