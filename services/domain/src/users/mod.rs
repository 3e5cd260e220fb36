//! The users surface (A3.8): list, create, read, update, password change and deactivation
//! of a tenant's users, under the no-escalation rules of A3.1 and the last-root guard; and
//! invites (A3.5, [`invites`]). Thin over the [`UserStore`] port: every decision is here.
//!
//! Every user gets `/fs/home/<username>` (B2.1) once the filesystem exists; until then
//! nothing is created for it.

pub mod invites;
pub mod rules;

use crate::auth::password;
use crate::ident;
use crate::ports::users::{NewUser, UserChange, UserStore};
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use rules::{check_grant, check_target, object, opt_str, sudo_required, ROOT_USER_ID};
use serde_json::{json, Value};
use std::sync::Arc;

/// `/api/user*` and the invite routes over a [`UserStore`].
pub struct UsersService {
    store: Arc<dyn UserStore>,
}

/// Hashes a password on a blocking thread (argon2id costs ~20 MiB and tens of ms).
pub(crate) async fn hash_password(pw: &str) -> Result<String> {
    let pw = pw.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(Error::internal)?
}

async fn verify_password(pw: &str, phc: Option<String>) -> Result<bool> {
    let pw = pw.to_owned();
    tokio::task::spawn_blocking(move || password::verify(&pw, phc.as_deref()))
        .await
        .map_err(Error::internal)
}

/// The built-in `root` can be neither deactivated nor demoted (A3.8).
fn builtin_root() -> Error {
    Error::msg(
        ErrorCode::AuthLastRoot,
        "The built-in root user can be neither deactivated nor demoted",
    )
    .with_data(json!({"id": ROOT_USER_ID}))
}

impl UsersService {
    pub fn new(store: Arc<dyn UserStore>) -> Self {
        Self { store }
    }

    /// `GET /api/user` (sudo).
    pub async fn list(
        &self,
        ctx: &TenantCtx,
        limit: Option<&str>,
        offset: Option<&str>,
        include_trashed: bool,
    ) -> Result<Value> {
        if !ctx.is_sudo() {
            return Err(sudo_required("Listing users"));
        }
        let (limit, offset) = rules::page(limit, offset)?;
        let users = self
            .store
            .list(&ctx.schema, limit, offset, include_trashed)
            .await?;
        Ok(Value::Array(users))
    }

    /// `POST /api/user` (sudo; `access` ≤ the caller's role).
    pub async fn create(&self, ctx: &TenantCtx, body: Option<Value>) -> Result<Value> {
        if !ctx.is_sudo() {
            return Err(sudo_required("Creating users"));
        }
        let b = object(body)?;
        let raw = match (opt_str(&b, "username")?, opt_str(&b, "auth")?) {
            (Some(u), Some(a)) if u != a => {
                return Err(Error::field_invalid(
                    "auth",
                    "the same value as username (auth is an alias)",
                ))
            }
            (Some(u), _) | (None, Some(u)) => u,
            (None, None) => return Err(Error::field_missing("username")),
        };
        let username = ident::username(raw)?;
        let name = match b.get("name") {
            None | Some(Value::Null) => username.as_str().to_owned(),
            Some(v) => rules::display_name(v)?,
        };
        let email = opt_str(&b, "email")?.map(rules::email).transpose()?;
        let access = match b.get("access") {
            None | Some(Value::Null) => Role::Read,
            Some(v) => rules::parse_role("access", v)?,
        };
        check_grant(ctx, access)?;
        let password_hash = match opt_str(&b, "password")? {
            Some(pw) => {
                rules::password("password", pw)?;
                Some(hash_password(pw).await?)
            }
            None => None,
        };
        self.store
            .create(
                &ctx.schema,
                NewUser {
                    username,
                    name,
                    email,
                    access,
                    password_hash,
                },
            )
            .await
    }

    /// `GET /api/user/:id` (self or sudo; sudo also sees deactivated users).
    pub async fn get(&self, ctx: &TenantCtx, raw_id: &str) -> Result<Value> {
        let id = rules::user_id(ctx, raw_id)?;
        if id != ctx.user_id && !ctx.is_sudo() {
            return Err(sudo_required("Reading another user"));
        }
        self.store
            .object(&ctx.schema, id)
            .await?
            .ok_or_else(|| rules::user_not_found(raw_id))
    }

    /// `PUT /api/user/:id`: self may change `name` and `email`; sudo also `username` and
    /// `access` (target and new `access` ≤ the caller's role). `null` clears `email` and is
    /// invalid on the other keys (A1.1).
    pub async fn update(
        &self,
        ctx: &TenantCtx,
        raw_id: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let id = rules::user_id(ctx, raw_id)?;
        let b = object(body)?;
        let sudo = ctx.is_sudo();
        let is_self = id == ctx.user_id;
        let privileged: Vec<&str> = ["access", "username"]
            .into_iter()
            .filter(|k| b.contains_key(*k))
            .collect();
        if !sudo && !privileged.is_empty() {
            return Err(Error::msg(
                ErrorCode::AuthSudoRequired,
                format!("Changing {} needs sudo", privileged.join(" and ")),
            )
            .with_data(json!({"model": "users", "fields": privileged})));
        }
        if !sudo && !is_self {
            return Err(sudo_required("Changing another user"));
        }
        let mut change = UserChange::default();
        if let Some(v) = b.get("name") {
            change.name = Some(rules::display_name(v)?);
        }
        match b.get("email") {
            None => {}
            Some(Value::Null) => change.email = Some(None),
            Some(Value::String(s)) => change.email = Some(Some(rules::email(s)?)),
            Some(_) => return Err(Error::field_invalid("email", "a string or null")),
        }
        if let Some(v) = b.get("username") {
            let s = v
                .as_str()
                .ok_or_else(|| Error::field_invalid("username", "a string"))?;
            change.username = Some(ident::username(s)?);
        }
        if let Some(v) = b.get("access") {
            change.access = Some(rules::parse_role("access", v)?);
        }
        let target = self
            .store
            .row(&ctx.schema, id)
            .await?
            .filter(|u| u.active)
            .ok_or_else(|| rules::user_not_found(raw_id))?;
        // Profile edits of oneself need nothing more; anything else acts on the target with
        // the caller's role (a root user behind a `full` key cannot change its own access).
        if !is_self || !privileged.is_empty() {
            check_target(ctx, target.access)?;
        }
        if let Some(a) = change.access {
            check_grant(ctx, a)?;
            if id == ROOT_USER_ID && a != Role::Root {
                return Err(builtin_root());
            }
        }
        if change.is_empty() {
            return self
                .store
                .object(&ctx.schema, id)
                .await?
                .ok_or_else(|| rules::user_not_found(raw_id));
        }
        let guard = target.access == Role::Root && change.access.is_some_and(|a| a != Role::Root);
        self.store
            .update(&ctx.schema, id, &change, guard)
            .await?
            .ok_or_else(|| rules::user_not_found(raw_id))
    }

    /// `POST /api/user/:id/password`: self with `current_password`, or sudo on a user whose
    /// `access` ≤ the caller's role. Never with an impersonation token.
    pub async fn change_password(
        &self,
        ctx: &TenantCtx,
        raw_id: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        rules::no_fake(ctx, "change passwords")?;
        let id = rules::user_id(ctx, raw_id)?;
        let b = object(body)?;
        let sudo = ctx.is_sudo();
        let is_self = id == ctx.user_id;
        let new = rules::req_str(&b, "new_password")?;
        let current = opt_str(&b, "current_password")?;
        if is_self && !sudo && current.is_none() {
            return Err(Error::field_missing("current_password"));
        }
        if !is_self && !sudo {
            return Err(sudo_required("Changing another user's password"));
        }
        rules::password("new_password", new)?;
        let target = self
            .store
            .row(&ctx.schema, id)
            .await?
            .filter(|u| u.active)
            .ok_or_else(|| rules::user_not_found(raw_id))?;
        match (is_self, current) {
            (true, Some(cur)) => {
                let phc = self.store.password_hash(&ctx.schema, id).await?;
                if !verify_password(cur, phc).await? {
                    return Err(Error::msg(
                        ErrorCode::AuthPasswordMismatch,
                        "current_password is wrong",
                    ));
                }
            }
            _ => check_target(ctx, target.access)?,
        }
        let hash = hash_password(new).await?;
        let at = self.store.set_password(&ctx.schema, id, &hash).await?;
        tracing::info!(target: "audit", event = "password_changed", tenant = %ctx.tenant,
            user_id = %id, by = %ctx.user_id, request_id = %ctx.request_id, "password changed");
        Ok(json!({"id": id, "password_changed_at": at}))
    }

    /// `DELETE /api/user/:id`: trashes the user (every credential fails at once); restore
    /// through `POST /api/trashed/users/:id`.
    pub async fn deactivate(
        &self,
        ctx: &TenantCtx,
        raw_id: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let id = rules::user_id(ctx, raw_id)?;
        let b = object(body)?;
        if b.get("confirm") != Some(&Value::Bool(true)) {
            return Err(Error::msg(
                ErrorCode::ValidationConfirmationRequired,
                "Deactivating a user needs \"confirm\": true",
            ));
        }
        let reason = opt_str(&b, "reason")?.map(str::to_owned);
        let is_self = id == ctx.user_id;
        if !is_self && !ctx.is_sudo() {
            return Err(sudo_required("Deactivating another user"));
        }
        let target = self
            .store
            .row(&ctx.schema, id)
            .await?
            .filter(|u| u.active)
            .ok_or_else(|| rules::user_not_found(raw_id))?;
        check_target(ctx, target.access)?;
        if id == ROOT_USER_ID {
            return Err(builtin_root());
        }
        let at = self
            .store
            .deactivate(&ctx.schema, id, target.access == Role::Root)
            .await?
            .ok_or_else(|| rules::user_not_found(raw_id))?;
        tracing::info!(target: "audit", event = "user_deactivated", tenant = %ctx.tenant,
            user_id = %id, by = %ctx.user_id, reason = reason.as_deref().unwrap_or(""),
            request_id = %ctx.request_id, "user deactivated");
        Ok(json!({"id": id, "deactivated_at": at, "reason": reason}))
    }
}

#[cfg(test)]
mod tests;
