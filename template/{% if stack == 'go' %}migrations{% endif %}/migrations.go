// Package migrations embeds the SQL migrations, so the service binary (and
// the image the migration Job runs) carries exactly the schema it expects.
//
// golang-migrate naming: NNNN_name.up.sql applies a change, NNNN_name.down.sql
// undoes it. schema.sql is what `make migrate-check` expects the database to
// look like after every up migration (regenerate it with
// `make migrate-schema`).
package migrations

import "embed"

// Files holds every migration.
//
//go:embed *.up.sql *.down.sql
var Files embed.FS
