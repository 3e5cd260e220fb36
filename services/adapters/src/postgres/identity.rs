//! The per-request identity statement (A3.2): the tenant row, the user row and the credential
//! rows a token leans on (machine key, API key, impersonator), in one `SELECT` that both
//! [`super::auth_store`] and the guarded reads of the record store embed. Every variant has
//! the same [`COLUMNS`] columns in the same order; rows a token does not lean on are typed
//! NULLs, so one reader serves all.

use abbotik_domain::ports::auth::{IdentityRef, KeyState, ResolvedIdentity, ResolvedUser};
use abbotik_domain::Role;
use tokio_postgres::Row;

/// Number of columns an [`identity_select`] yields (the guarded reads append theirs after).
pub const COLUMNS: usize = 16;

/// Which credential rows a statement joins: part of a prepared text's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Joins {
    pub machine_key: bool,
    pub api_key: bool,
    pub impersonator: bool,
}

impl Joins {
    pub fn of(id: &IdentityRef) -> Joins {
        Joins {
            machine_key: id.machine_key.is_some(),
            api_key: id.api_key.is_some(),
            impersonator: id.impersonator.is_some(),
        }
    }
}

/// Placeholders (e.g. `$4::text::uuid`) of the values an identity statement binds.
pub struct Placeholders<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub machine_key: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub impersonator: Option<&'a str>,
}

/// The statement; `schema` is the quoted tenant schema.
pub fn identity_select(schema: &str, p: &Placeholders<'_>) -> String {
    let mut cols = String::from(
        "t.name, t.status, t.meta_version, u.username, u.access, \
         (u.trashed_at IS NULL AND u.deleted_at IS NULL)",
    );
    let mut joins = format!(
        "FROM abbotik_control.tenants t LEFT JOIN {schema}.\"users\" u ON u.id = {user}",
        user = p.user
    );
    match p.machine_key {
        Some(k) => {
            cols.push_str(
                ", mk.id IS NOT NULL, coalesce(mk.revoked_at <= now(), false), \
                 coalesce(mk.expires_at <= now(), false)",
            );
            joins.push_str(&format!(
                " LEFT JOIN {schema}.\"machine_keys\" mk ON mk.id = {k} AND mk.user_id = u.id"
            ));
        }
        None => cols.push_str(", NULL::bool, NULL::bool, NULL::bool"),
    }
    match p.api_key {
        Some(k) => {
            cols.push_str(
                ", ak.id IS NOT NULL, coalesce(ak.revoked_at <= now(), false), \
                 coalesce(ak.expires_at <= now(), false), ak.access",
            );
            joins.push_str(&format!(
                " LEFT JOIN abbotik_control.api_keys ak ON ak.id = {k} \
                 AND ak.tenant_id = t.id AND ak.user_id = u.id"
            ));
        }
        None => cols.push_str(", NULL::bool, NULL::bool, NULL::bool, NULL::text"),
    }
    match p.impersonator {
        Some(f) => {
            cols.push_str(
                ", f.username, f.access, (f.trashed_at IS NULL AND f.deleted_at IS NULL)",
            );
            joins.push_str(&format!(" LEFT JOIN {schema}.\"users\" f ON f.id = {f}"));
        }
        None => cols.push_str(", NULL::text, NULL::text, NULL::bool"),
    }
    format!(
        "SELECT {cols} {joins} WHERE t.id = {tenant}",
        tenant = p.tenant
    )
}

/// Reads columns `0..COLUMNS` of an [`identity_select`] row made for `joins`.
pub fn identity_from_row(r: &Row, joins: Joins) -> ResolvedIdentity {
    let key = |at: usize, access: Option<usize>| KeyState {
        found: r.get::<_, Option<bool>>(at).unwrap_or(false),
        revoked: r.get::<_, Option<bool>>(at + 1).unwrap_or(false),
        expired: r.get::<_, Option<bool>>(at + 2).unwrap_or(false),
        access: access.and_then(|i| r.get::<_, Option<&str>>(i)).map(role),
    };
    ResolvedIdentity {
        tenant_name: r.get(0),
        tenant_status: r.get(1),
        meta_version: r.get(2),
        user: user(r, 3),
        machine_key: joins.machine_key.then(|| key(6, None)),
        api_key: joins.api_key.then(|| key(9, Some(12))),
        impersonator: if joins.impersonator {
            user(r, 13)
        } else {
            None
        },
    }
}

/// A user from three columns (username, access, active); `None` when the row is missing.
fn user(r: &Row, at: usize) -> Option<ResolvedUser> {
    r.get::<_, Option<String>>(at).map(|username| ResolvedUser {
        username,
        access: role(r.get(at + 1)),
        active: r.get::<_, Option<bool>>(at + 2).unwrap_or(false),
    })
}

pub fn role(s: &str) -> Role {
    Role::parse(s).unwrap_or(Role::Deny)
}
