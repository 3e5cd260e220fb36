//! Who may do what with a model's records (A3.1, A4.2, A4.6). Record ACLs (A11) come later;
//! until then the effective role alone decides: read ≥ `read`, create/update ≥ `edit`,
//! trash/restore/purge ≥ `full`; sudo bypasses the `sudo` flags of models and fields.

use crate::model::ModelDef;
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use serde_json::json;

/// An operation on records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Create,
    Update,
    Trash,
    Restore,
    Purge,
}

impl Op {
    const fn is_write(self) -> bool {
        !matches!(self, Op::Read)
    }

    const fn required(self) -> Role {
        match self {
            Op::Read => Role::Read,
            Op::Create | Op::Update => Role::Edit,
            Op::Trash | Op::Restore | Op::Purge => Role::Full,
        }
    }
}

fn protected(model: &str, msg: &str) -> Error {
    Error::msg(ErrorCode::ModelSystemProtected, msg.to_owned()).with_data(json!({ "model": model }))
}

/// `403 AUTH_ROLE_INSUFFICIENT` with `data.required` / `data.actual`.
pub fn role_insufficient(required: Role, actual: Role) -> Error {
    Error::msg(
        ErrorCode::AuthRoleInsufficient,
        format!("This needs role {required}; yours is {actual}"),
    )
    .with_data(json!({ "required": required.as_str(), "actual": actual.as_str() }))
}

/// Checks an operation on the model's records.
pub fn check(ctx: &TenantCtx, model: &ModelDef, op: Op) -> Result<()> {
    let name = model.model_name.as_str();
    if model.is_system() {
        match name {
            "tracked" => {
                return Err(protected(
                    name,
                    "The tracked model is read through /api/tracked only",
                ))
            }
            // Sudo may restore trashed users (A10); every other generic write is refused.
            "users" if op == Op::Restore && ctx.is_sudo() => {}
            "models" | "fields" | "users" if op.is_write() => {
                return Err(protected(
                    name,
                    "System model records are written through their dedicated surface",
                ))
            }
            "users" if !ctx.is_sudo() => {
                return Err(Error::msg(
                    ErrorCode::AuthSudoRequired,
                    "Reading users through the generic routes needs sudo",
                )
                .with_data(json!({ "model": name })))
            }
            _ => {}
        }
    }
    let required = op.required();
    if ctx.role < required {
        return Err(role_insufficient(required, ctx.role));
    }
    if !op.is_write() {
        return Ok(());
    }
    if model.frozen {
        return Err(
            Error::msg(ErrorCode::ModelFrozen, format!("Model {name} is frozen"))
                .with_data(json!({ "model": name })),
        );
    }
    if model.external {
        return Err(Error::msg(
            ErrorCode::ModelExternal,
            format!("Model {name} is external and read-only here"),
        )
        .with_data(json!({ "model": name })));
    }
    if model.immutable && matches!(op, Op::Update | Op::Trash | Op::Purge) {
        return Err(Error::msg(
            ErrorCode::ModelImmutable,
            format!("Model {name} is immutable: records cannot be updated or deleted"),
        )
        .with_data(json!({ "model": name })));
    }
    if model.sudo && !ctx.is_sudo() {
        return Err(Error::msg(
            ErrorCode::AuthSudoRequired,
            format!("Writes to model {name} need sudo"),
        )
        .with_data(json!({ "model": name })));
    }
    Ok(())
}

/// Whether the caller may see the model in `GET /api/trashed`.
pub fn can_list_trashed(ctx: &TenantCtx, model: &ModelDef) -> bool {
    check(ctx, model, Op::Read).is_ok()
}

/// Writing fields marked `sudo` needs sudo (`data.model`, `data.fields`).
pub fn check_sudo_fields(ctx: &TenantCtx, model: &ModelDef, fields: &[String]) -> Result<()> {
    if fields.is_empty() || ctx.is_sudo() {
        return Ok(());
    }
    let mut f: Vec<&str> = fields.iter().map(String::as_str).collect();
    f.sort_unstable();
    f.dedup();
    Err(Error::msg(
        ErrorCode::AuthSudoRequired,
        format!("Writing {} needs sudo", f.join(", ")),
    )
    .with_data(json!({ "model": model.model_name, "fields": f })))
}
