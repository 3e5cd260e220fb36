//! PostgreSQL: connection pool ([`db`]), control-plane migrations ([`migrate`]), tenant schema
//! DDL ([`tenant_schema`]), the embedded cluster ([`embedded`]) and the stores. Every SQL
//! statement of the product is built in this module tree; identifiers always come from
//! validated [`abbotik_domain::Ident`]s, quoted and schema-qualified; values are always bound.

pub mod aggregate_store;
pub mod api_key_store;
pub mod auth_store;
mod by_id_read;
mod coalesce;
pub mod db;
mod ddl;
mod ddl_alter;
pub mod describe_store;
pub mod embedded;
mod filter_sql;
pub mod find_store;
mod group_commit;
mod identity;
mod import_copy;
pub mod import_store;
pub mod janitor;
mod lanes;
pub mod machine_store;
pub mod migrate;
pub mod record_store;
mod records_sql;
mod records_stream;
mod records_write;
pub mod secret_store;
pub mod tenant_admin;
pub mod tenant_limits;
pub mod tenant_schema;
pub mod unit_of_work;
pub mod user_store;

pub use db::{map_db_error, Db, DbConfig};
