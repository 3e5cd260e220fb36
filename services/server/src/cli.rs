//! Command line (B10): `abbot-api <command>`.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "abbot-api", version, about = "Abbotik API server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API server (embedded mode when ABBOTIK_DATABASE_URL is unset).
    Run {
        #[arg(long, value_enum, default_value_t = Workers::Auto)]
        workers: Workers,
    },
    /// Run background workers only.
    Worker,
    /// Apply control-schema migrations and upgrade every tenant schema, then exit.
    Migrate {
        /// Exit 1 if the database is behind this binary.
        #[arg(long)]
        check: bool,
    },
    /// Tenant administration (direct database access).
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// User-secret maintenance (A3.8a).
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
pub enum SecretsAction {
    /// Re-encrypt every user secret not under the first key of ABBOTIK_SECRETS_KEK, then exit.
    Rekey {
        /// Only these tenants (repeatable); default: every tenant.
        #[arg(long = "tenant")]
        tenants: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantAction {
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant (its credentials answer 401 TENANT_INACTIVE).
    Suspend { name: String },
    /// Resume a suspended tenant.
    Resume { name: String },
    /// Show or set a tenant's rate-limit overrides (B5). Values: an integer ≥ 0 (0 disables
    /// that limiter for the tenant) or `default`. Servers apply a change within 5 seconds.
    Limits {
        name: String,
        #[arg(long, value_name = "N")]
        tenant_rps: Option<String>,
        #[arg(long, value_name = "N")]
        tenant_burst: Option<String>,
        #[arg(long, value_name = "N")]
        key_rps: Option<String>,
        #[arg(long, value_name = "N")]
        key_burst: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    Auto,
    On,
    Off,
}
