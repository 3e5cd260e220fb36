-- Control schema (A13): tenant registry shared by all tenants of the region.
CREATE SCHEMA IF NOT EXISTS abbotik_control;

CREATE TABLE IF NOT EXISTS abbotik_control.tenants (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    schema           text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'deleted')),
    description      text,
    owner_id         uuid,
    region           text NOT NULL,
    -- tenant DDL version applied to the schema (upgraded by `abbot-api migrate`)
    schema_version   integer NOT NULL DEFAULT 0,
    -- bumped in the same transaction as every describe write; per-pod metadata caches
    -- are valid only at the version read with the caller's identity
    meta_version     bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    writes_paused_at timestamptz
);
CREATE INDEX IF NOT EXISTS tenants_status_idx ON abbotik_control.tenants (status, created_at);

-- Single-use tokens (dissolve confirmation jti), kept until they expire.
CREATE TABLE IF NOT EXISTS abbotik_control.used_tokens (
    jti        uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
