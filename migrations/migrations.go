// Package migrations embeds the SQL schema migrations, applied in name order by
// bun's migrate package (see models.Migrate).
package migrations

import "embed"

// FS holds NNNN_name.tx.up.sql / .tx.down.sql files.
//
//go:embed *.sql
var FS embed.FS
