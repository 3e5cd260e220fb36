//! Operator administration of the tenant registry (`abbot-api tenant list|suspend|resume`, B10):
//! direct reads and status changes of `abbotik_control.tenants`.

use super::{map_db_error, Db};
use abbotik_domain::time::Ts;
use abbotik_domain::{Error, Ident};
use serde::Serialize;

/// One registry row as the operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantRow {
    pub id: uuid::Uuid,
    pub name: String,
    pub status: String,
    pub region: String,
    pub description: Option<String>,
    pub owner_id: Option<uuid::Uuid>,
    pub schema_version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub deleted_at: Option<Ts>,
}

/// Every tenant, by name.
pub async fn list(db: &Db) -> Result<Vec<TenantRow>, Error> {
    let c = db.conn().await?;
    let rows = c
        .query(
            "SELECT id, name, status, region, description, owner_id, schema_version,
                    created_at, updated_at, deleted_at
               FROM abbotik_control.tenants ORDER BY name",
            &[],
        )
        .await
        .map_err(map_db_error)?;
    Ok(rows
        .iter()
        .map(|r| TenantRow {
            id: r.get(0),
            name: r.get(1),
            status: r.get(2),
            region: r.get(3),
            description: r.get(4),
            owner_id: r.get(5),
            schema_version: r.get(6),
            created_at: Ts(r.get(7)),
            updated_at: Ts(r.get(8)),
            deleted_at: r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(9).map(Ts),
        })
        .collect())
}

/// The operator statuses (A13): `suspended` is set and cleared only by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminStatus {
    Suspended,
    Active,
}

impl AdminStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminStatus::Suspended => "suspended",
            AdminStatus::Active => "active",
        }
    }
}

/// The outcome of a status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// Changed from the given status.
    Changed {
        from: String,
    },
    /// Already in a state that satisfies the request (e.g. suspending a suspended tenant,
    /// resuming a tenant that was never suspended); carries the current status.
    Unchanged {
        status: String,
    },
    NotFound,
    /// Dissolved tenants cannot be suspended or resumed.
    Dissolved,
}

/// Suspends (`pending`/`active` → `suspended`) or resumes (`suspended` → `active`) a tenant.
pub async fn set_status(db: &Db, tenant: &Ident, to: AdminStatus) -> Result<StatusChange, Error> {
    let mut c = db.conn().await?;
    let tx = c.transaction().await.map_err(map_db_error)?;
    let row = tx
        .query_opt(
            "SELECT status FROM abbotik_control.tenants WHERE name = $1 FOR UPDATE",
            &[&tenant.as_str()],
        )
        .await
        .map_err(map_db_error)?;
    let Some(row) = row else {
        return Ok(StatusChange::NotFound);
    };
    let from: String = row.get(0);
    let change = match (from.as_str(), to) {
        ("deleted", _) => return Ok(StatusChange::Dissolved),
        ("suspended", AdminStatus::Suspended) | ("active" | "pending", AdminStatus::Active) => {
            return Ok(StatusChange::Unchanged { status: from })
        }
        _ => StatusChange::Changed { from },
    };
    tx.execute(
        "UPDATE abbotik_control.tenants SET status = $2, updated_at = now() WHERE name = $1",
        &[&tenant.as_str(), &to.as_str()],
    )
    .await
    .map_err(map_db_error)?;
    tx.commit().await.map_err(map_db_error)?;
    Ok(change)
}
