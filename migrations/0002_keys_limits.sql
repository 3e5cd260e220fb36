-- Control schema (A3.7, B5): bearer API keys, resolved to their tenant before any tenant schema
-- is touched, and per-tenant rate-limit overrides.
CREATE TABLE IF NOT EXISTS abbotik_control.api_keys (
    key_hash     text PRIMARY KEY,            -- hex SHA-256 of the whole key string
    id           uuid NOT NULL UNIQUE,
    tenant_id    uuid NOT NULL REFERENCES abbotik_control.tenants (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL,
    name         text,
    prefix       text NOT NULL,               -- first 12 chars, for display only
    access       text NOT NULL CHECK (access IN ('deny', 'read', 'edit', 'full', 'root')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_owner_idx ON abbotik_control.api_keys (tenant_id, user_id);

CREATE TABLE IF NOT EXISTS abbotik_control.tenant_limits (
    tenant_id      uuid PRIMARY KEY REFERENCES abbotik_control.tenants (id) ON DELETE CASCADE,
    tenant_rps     integer,
    tenant_burst   integer,
    key_rps        integer,
    key_burst      integer,
    fs_quota_bytes bigint,
    cron_max_jobs  integer
);
