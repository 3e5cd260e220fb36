//! Operator commands with direct database access (B10): `abbot-api tenant list [--json]`,
//! `tenant suspend <name>`, `tenant resume <name>`. Output on stdout; problems on stderr with
//! exit code 1.

use crate::cli::TenantAction;
use abbotik_adapters::postgres::tenant_admin::{self, AdminStatus, StatusChange};
use abbotik_adapters::postgres::Db;
use abbotik_domain::ident;

/// Runs one `tenant` action; returns the exit code.
pub async fn tenant(db: &Db, action: TenantAction) -> anyhow::Result<i32> {
    match action {
        TenantAction::List { json } => list(db, json).await,
        TenantAction::Suspend { name } => set(db, &name, AdminStatus::Suspended).await,
        TenantAction::Resume { name } => set(db, &name, AdminStatus::Active).await,
        TenantAction::Limits {
            name,
            tenant_rps,
            tenant_burst,
            key_rps,
            key_burst,
            json,
        } => {
            let args = crate::admin_limits::LimitsArgs {
                name,
                tenant_rps,
                tenant_burst,
                key_rps,
                key_burst,
                json,
            };
            crate::admin_limits::run(db, args).await
        }
    }
}

async fn list(db: &Db, json: bool) -> anyhow::Result<i32> {
    let rows = tenant_admin::list(db)
        .await
        .map_err(|e| anyhow::anyhow!("listing tenants: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("no tenants");
        return Ok(0);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<width$}  {:<9}  {:<12}  CREATED",
        "NAME", "STATUS", "REGION"
    );
    for r in &rows {
        println!(
            "{:<width$}  {:<9}  {:<12}  {}",
            r.name,
            r.status,
            r.region,
            r.created_at.to_rfc3339()
        );
    }
    Ok(0)
}

async fn set(db: &Db, name: &str, to: AdminStatus) -> anyhow::Result<i32> {
    let Ok(tenant) = ident::tenant_name(name) else {
        eprintln!("abbot-api: {name:?} is not a valid tenant name");
        return Ok(1);
    };
    let verb = match to {
        AdminStatus::Suspended => "suspended",
        AdminStatus::Active => "resumed",
    };
    let change = tenant_admin::set_status(db, &tenant, to)
        .await
        .map_err(|e| anyhow::anyhow!("updating tenant {name}: {e}"))?;
    match change {
        StatusChange::Changed { from } => {
            println!("tenant {name} {verb} (was {from}, now {})", to.as_str());
            Ok(0)
        }
        StatusChange::Unchanged { status } => {
            println!("tenant {name} is already {status}: nothing to do");
            Ok(0)
        }
        StatusChange::NotFound => {
            eprintln!("abbot-api: tenant {name} not found");
            Ok(1)
        }
        StatusChange::Dissolved => {
            eprintln!("abbot-api: tenant {name} is dissolved and cannot be {verb}");
            Ok(1)
        }
    }
}
