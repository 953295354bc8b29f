-- Create the items table (docs/service-contract.md, "Database").
-- One transaction, so a failure leaves nothing half-applied; the timeouts
-- bound how long the migration may wait for or hold locks on a live database.
BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE TABLE "items" (
    "id" BIGINT GENERATED ALWAYS AS IDENTITY NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "description" VARCHAR(2000),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT now(),
    CONSTRAINT "pk_items" PRIMARY KEY ("id")
);

COMMIT;
