//! The DDL of a tenant schema (A13): system models, internal tables, and the seeded metadata
//! of the system models. Versioned: provisioning applies every step; `migrate` applies the
//! steps above a tenant's recorded `schema_version`. The schema name is a validated
//! [`Ident`] (`ns_tenant_<tenant>`), quoted everywhere.

use abbotik_domain::Ident;

/// Current tenant DDL version.
pub const VERSION: i32 = 2;

/// The system columns every record has (A1.7), as a column-list fragment.
pub const SYSTEM_COLUMNS: &str = "id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    access_read uuid[] NOT NULL DEFAULT '{}',
    access_edit uuid[] NOT NULL DEFAULT '{}',
    access_full uuid[] NOT NULL DEFAULT '{}',
    access_deny uuid[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    trashed_at timestamptz,
    deleted_at timestamptz";

/// Every statement needed to bring a schema from `from` to [`VERSION`]
/// (`from = 0` for a new tenant: creates the schema itself).
pub fn upgrade_steps(schema: &Ident, from: i32) -> Vec<String> {
    let s = schema.quoted();
    let mut out = Vec::new();
    if from < 1 {
        out.push(version_1(&s));
    }
    if from < 2 {
        out.push(version_2(&s));
    }
    out
}

fn version_1(s: &str) -> String {
    let sys = SYSTEM_COLUMNS;
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}."models" (
    {sys},
    model_name text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'active',
    description text,
    sudo boolean NOT NULL DEFAULT false,
    frozen boolean NOT NULL DEFAULT false,
    immutable boolean NOT NULL DEFAULT false,
    external boolean NOT NULL DEFAULT false,
    passthrough boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS {s}."fields" (
    {sys},
    model_name text NOT NULL,
    field_name text NOT NULL,
    type text NOT NULL,
    required boolean NOT NULL DEFAULT false,
    default_value jsonb,
    description text,
    minimum numeric,
    maximum numeric,
    pattern text,
    enum_values jsonb,
    is_array boolean NOT NULL DEFAULT false,
    immutable boolean NOT NULL DEFAULT false,
    sudo boolean NOT NULL DEFAULT false,
    "unique" boolean NOT NULL DEFAULT false,
    "index" boolean NOT NULL DEFAULT false,
    searchable boolean NOT NULL DEFAULT false,
    tracked boolean NOT NULL DEFAULT false,
    transform text,
    relationship_type text,
    related_model text,
    related_field text,
    relationship_name text,
    cascade_delete boolean NOT NULL DEFAULT false,
    ordinal integer NOT NULL DEFAULT 0,
    unique_index text,
    btree_index text,
    search_index text,
    relationship_index text,
    UNIQUE (model_name, field_name)
);
CREATE TABLE IF NOT EXISTS {s}."users" (
    {sys},
    name text NOT NULL,
    username text NOT NULL UNIQUE,
    email text,
    access text NOT NULL CHECK (access IN ('deny','read','edit','full','root'))
);
CREATE TABLE IF NOT EXISTS {s}."filters" (
    {sys},
    model_name text NOT NULL,
    name text NOT NULL,
    description text,
    "select" jsonb,
    "where" jsonb,
    "order" jsonb,
    "limit" integer,
    "offset" integer
);
CREATE UNIQUE INDEX IF NOT EXISTS filters_name_uq ON {s}."filters" (model_name, name) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS {s}."tracked" (
    {sys},
    change_id bigserial NOT NULL UNIQUE,
    model_name text NOT NULL,
    record_id uuid NOT NULL,
    operation text NOT NULL,
    changes jsonb NOT NULL DEFAULT '{{}}',
    request_id text,
    actor jsonb NOT NULL DEFAULT '{{}}',
    created_by uuid,
    metadata jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS tracked_record_idx ON {s}."tracked" (model_name, record_id, change_id);
CREATE TABLE IF NOT EXISTS {s}."credentials" (
    user_id uuid PRIMARY KEY,
    password_hash text NOT NULL,
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}."idempotency_keys" (
    key text PRIMARY KEY,
    request_hash text NOT NULL,
    status integer NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
{seed}
"#,
        seed = seed_system_models(s)
    )
}

/// Version 2: the internal tables of machine identity and teams (A3.4–A3.6, A3.8a).
fn version_2(s: &str) -> String {
    format!(
        r#"
CREATE TABLE IF NOT EXISTS {s}."machine_keys" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    name text,
    algorithm text NOT NULL DEFAULT 'ed25519',
    public_key bytea NOT NULL,
    fingerprint text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS machine_keys_user_idx ON {s}."machine_keys" (user_id);
CREATE TABLE IF NOT EXISTS {s}."auth_challenges" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_id uuid NOT NULL,
    nonce text NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE TABLE IF NOT EXISTS {s}."invites" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code_hash text NOT NULL UNIQUE,
    username text NOT NULL,
    invite_type text NOT NULL CHECK (invite_type IN ('human','machine','either')),
    access text NOT NULL CHECK (access IN ('deny','read','edit','full','root')),
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);
CREATE TABLE IF NOT EXISTS {s}."user_secrets" (
    user_id uuid NOT NULL,
    name text NOT NULL,
    kind text,
    description text,
    metadata jsonb NOT NULL DEFAULT '{{}}',
    kek_id text NOT NULL,
    nonce bytea NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    PRIMARY KEY (user_id, name)
);
"#
    )
}

/// Metadata rows describing the system models themselves (A4.6), `status = 'system'`.
fn seed_system_models(s: &str) -> String {
    /// `(field, type, required)`.
    type SystemField = (&'static str, &'static str, bool);
    const SYSTEM: &[(&str, &[SystemField])] = &[
        (
            "models",
            &[
                ("model_name", "text", true),
                ("status", "text", true),
                ("description", "text", false),
                ("sudo", "boolean", true),
                ("frozen", "boolean", true),
                ("immutable", "boolean", true),
                ("external", "boolean", true),
                ("passthrough", "boolean", true),
            ],
        ),
        (
            "fields",
            &[
                ("model_name", "text", true),
                ("field_name", "text", true),
                ("type", "text", true),
                ("required", "boolean", true),
                ("default_value", "jsonb", false),
                ("description", "text", false),
                ("minimum", "decimal", false),
                ("maximum", "decimal", false),
                ("pattern", "text", false),
                ("enum_values", "jsonb", false),
                ("is_array", "boolean", true),
                ("immutable", "boolean", true),
                ("sudo", "boolean", true),
                ("unique", "boolean", true),
                ("index", "boolean", true),
                ("searchable", "boolean", true),
                ("tracked", "boolean", true),
                ("transform", "text", false),
                ("relationship_type", "text", false),
                ("related_model", "text", false),
                ("related_field", "text", false),
                ("relationship_name", "text", false),
                ("cascade_delete", "boolean", true),
            ],
        ),
        (
            "users",
            &[
                ("name", "text", true),
                ("username", "text", true),
                ("email", "text", false),
                ("access", "text", true),
            ],
        ),
        (
            "filters",
            &[
                ("model_name", "text", true),
                ("name", "text", true),
                ("description", "text", false),
                ("select", "jsonb", false),
                ("where", "jsonb", false),
                ("order", "jsonb", false),
                ("limit", "integer", false),
                ("offset", "integer", false),
            ],
        ),
        (
            "tracked",
            &[
                ("change_id", "bigserial", true),
                ("model_name", "text", true),
                ("record_id", "uuid", true),
                ("operation", "text", true),
                ("changes", "jsonb", true),
                ("request_id", "text", false),
                ("actor", "jsonb", true),
                ("created_by", "uuid", false),
                ("metadata", "jsonb", true),
            ],
        ),
    ];
    let mut sql = String::new();
    for (model, fields) in SYSTEM {
        sql.push_str(&format!(
            "INSERT INTO {s}.\"models\" (model_name, status) VALUES ('{model}', 'system') ON CONFLICT (model_name) DO NOTHING;\n"
        ));
        for (i, (field, ty, required)) in fields.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO {s}.\"fields\" (model_name, field_name, type, required, ordinal) VALUES ('{model}', '{field}', '{ty}', {required}, {i}) ON CONFLICT (model_name, field_name) DO NOTHING;\n"
            ));
        }
    }
    sql
}
