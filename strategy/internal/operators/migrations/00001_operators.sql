-- +goose Up
-- What belongs to no tenant, in the one place of a deployment outside
-- every tenant (multidb's base database, the shared database's public
-- schema in multischema and singleschema): the operators, who sign in on
-- the base domain for the cross-tenant pages, and the sessions signed out
-- before they expire, which every server refuses. No account_id, no
-- row-level security: no tenant's row is here, and the app role may only
-- read operators (sign-in) and record and read sign-outs.
CREATE TABLE operators (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text NOT NULL CHECK (email <> '' AND length(email) <= 254),
    -- Django's pbkdf2_sha256 format, as users.password.
    password   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Emails are compared without case: one operator per mailbox.
CREATE UNIQUE INDEX operators_email ON operators (lower(email));

-- A session id is random (in the signed cookie); a row lives until the
-- session would have expired anyway, then is purged.
CREATE TABLE revoked_sessions (
    id         text COLLATE "C" PRIMARY KEY CHECK (length(id) BETWEEN 16 AND 64),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX revoked_sessions_expires_at ON revoked_sessions (expires_at);
CREATE INDEX revoked_sessions_revoked_at ON revoked_sessions (revoked_at);

-- +goose Down
DROP TABLE revoked_sessions;
DROP TABLE operators;
