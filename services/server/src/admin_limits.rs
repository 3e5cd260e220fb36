//! `abbot-api tenant limits <tenant> [--tenant-rps N] [--tenant-burst N] [--key-rps N]
//! [--key-burst N] [--json]` (B5, B10): shows and sets a tenant's rate-limit overrides in
//! `abbotik_control.tenant_limits`. A value is an integer ≥ 0 (0 disables that limiter for the
//! tenant) or `default` (back to the `ABBOTIK_RATE_*` default). Running servers pick a change
//! up within 5 seconds (their override cache).

use abbotik_adapters::postgres::tenant_limits::{self, RateChange};
use abbotik_adapters::postgres::Db;
use abbotik_domain::ports::ratelimit::TenantLimits;

/// The parsed flags of `tenant limits`.
#[derive(Debug, Default, Clone)]
pub struct LimitsArgs {
    pub name: String,
    pub tenant_rps: Option<String>,
    pub tenant_burst: Option<String>,
    pub key_rps: Option<String>,
    pub key_burst: Option<String>,
    pub json: bool,
}

/// `Some(None)` for `default`, `Some(Some(n))` for a number.
fn value(flag: &str, v: &Option<String>) -> Result<Option<Option<i32>>, String> {
    match v.as_deref() {
        None => Ok(None),
        Some("default") => Ok(Some(None)),
        Some(s) => s
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| format!("--{flag} must be an integer ≥ 0 or `default`")),
    }
}

fn show(v: Option<i32>) -> String {
    match v {
        None => "default".to_owned(),
        Some(0) => "0 (disabled)".to_owned(),
        Some(n) => n.to_string(),
    }
}

/// Runs the command; returns the exit code.
pub async fn run(db: &Db, a: LimitsArgs) -> anyhow::Result<i32> {
    let change = match (|| -> Result<RateChange, String> {
        Ok(RateChange {
            tenant_rps: value("tenant-rps", &a.tenant_rps)?,
            tenant_burst: value("tenant-burst", &a.tenant_burst)?,
            key_rps: value("key-rps", &a.key_rps)?,
            key_burst: value("key-burst", &a.key_burst)?,
        })
    })() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("abbot-api: {e}");
            return Ok(2);
        }
    };
    let id = tenant_limits::tenant_id(db, &a.name)
        .await
        .map_err(|e| anyhow::anyhow!("reading tenant {}: {e}", a.name))?;
    let Some(id) = id else {
        eprintln!("abbot-api: tenant {} not found", a.name);
        return Ok(1);
    };
    let any = [
        change.tenant_rps,
        change.tenant_burst,
        change.key_rps,
        change.key_burst,
    ]
    .iter()
    .any(Option::is_some);
    let limits: TenantLimits = if any {
        tenant_limits::set(db, id, change)
            .await
            .map_err(|e| anyhow::anyhow!("updating the limits of {}: {e}", a.name))?
    } else {
        tenant_limits::get(db, id)
            .await
            .map_err(|e| anyhow::anyhow!("reading the limits of {}: {e}", a.name))?
            .unwrap_or_default()
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "tenant": a.name,
                "tenant_id": id,
                "tenant_rps": limits.tenant_rps,
                "tenant_burst": limits.tenant_burst,
                "key_rps": limits.key_rps,
                "key_burst": limits.key_burst,
            }))?
        );
    } else {
        println!(
            "tenant {}{}: tenant-rps {}, tenant-burst {}, key-rps {}, key-burst {}",
            a.name,
            if any { " updated" } else { "" },
            show(limits.tenant_rps),
            show(limits.tenant_burst),
            show(limits.key_rps),
            show(limits.key_burst),
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(value("x", &None).unwrap(), None);
        assert_eq!(value("x", &Some("default".into())).unwrap(), Some(None));
        assert_eq!(value("x", &Some("500".into())).unwrap(), Some(Some(500)));
        assert_eq!(value("x", &Some("0".into())).unwrap(), Some(Some(0)));
        assert!(value("x", &Some("-1".into())).is_err());
        assert!(value("x", &Some("lots".into())).is_err());
    }
}
