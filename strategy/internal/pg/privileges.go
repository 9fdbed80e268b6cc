package pg

import (
	"context"
	"database/sql"
	"fmt"
)

// PrivilegesFingerprint digests, in one statement, everything Grants sets
// in the current database: the database's and the public schema's access
// lists, each relation's owner and access list, column privileges,
// functions' owners and access lists, per-database role settings and
// policies' roles. Two databases migrated alike and granted by Grants have
// the same fingerprint, since the access lists name cluster-wide roles; a
// privilege granted or revoked by hand since, anywhere Grants looks,
// changes it. So a tenant database whose fingerprint equals its freshly
// granted template's needs no grants, and migrate skips them: at a
// thousand tenant databases the grants transaction was 40% of a no-op
// migrate.
func PrivilegesFingerprint(ctx context.Context, db *sql.DB) (string, error) {
	var digest string
	err := db.QueryRowContext(ctx, `SELECT md5(concat_ws(E'\n',
		(SELECT coalesce(datacl::text, '-') FROM pg_catalog.pg_database WHERE datname = current_database()),
		(SELECT nspowner::regrole::text || coalesce(nspacl::text, '-') FROM pg_catalog.pg_namespace WHERE nspname = 'public'),
		(SELECT string_agg(relname || ' ' || relkind::text || ' ' || relowner::regrole::text || ' ' || coalesce(relacl::text, '-'), ',' ORDER BY relname)
			FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace),
		(SELECT string_agg(c.relname || '.' || a.attname || ' ' || a.attacl::text, ',' ORDER BY c.relname, a.attname)
			FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
			WHERE c.relnamespace = 'public'::regnamespace AND a.attacl IS NOT NULL),
		(SELECT string_agg(p.oid::regprocedure::text || ' ' || p.proowner::regrole::text || ' ' || coalesce(p.proacl::text, '-'), ',' ORDER BY p.oid::regprocedure::text)
			FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'public'::regnamespace),
		(SELECT string_agg(s.setrole::regrole::text || ' ' || array_to_string(s.setconfig, ' '), ',' ORDER BY s.setrole::regrole::text)
			FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
			WHERE d.datname = current_database()),
		(SELECT string_agg(c.relname || '.' || p.polname || ' ' || p.polroles::regrole[]::text, ',' ORDER BY c.relname, p.polname)
			FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
			WHERE c.relnamespace = 'public'::regnamespace)))`).Scan(&digest)
	if err != nil {
		return "", fmt.Errorf("read the privileges in place: %w", Classify(err))
	}
	return digest, nil
}
