//! Describe routes (A4.1) as service operations: permissions, body rules, protection of system
//! models, and the one-transaction write (DDL + metadata + `meta_version` bump).

use super::body::{self, FieldPatch, ModelPatch};
use super::{model_not_found, rules, DescribeService};
use crate::ident::{self, Ident, SYSTEM_MODELS};
use crate::model::{FieldDef, ModelDef};
use crate::ports::describe::DescribeTx;
use crate::time::Ts;
use crate::{Error, ErrorCode, Result, Role, TenantCtx};
use serde_json::{json, Value};

fn require_read(ctx: &TenantCtx) -> Result<()> {
    if ctx.role >= Role::Read {
        Ok(())
    } else {
        Err(Error::new(ErrorCode::AuthRoleInsufficient)
            .with_data(json!({"required": "read", "actual": ctx.role.as_str()})))
    }
}

fn require_sudo(ctx: &TenantCtx, model: &str) -> Result<()> {
    if ctx.is_sudo() {
        Ok(())
    } else {
        Err(
            Error::msg(ErrorCode::AuthSudoRequired, "Describe writes need sudo")
                .with_data(json!({ "model": ident::clip(model) })),
        )
    }
}

fn model_protected(name: &str) -> Error {
    Error::msg(
        ErrorCode::ModelSystemProtected,
        format!("System model {name} cannot be changed"),
    )
    .with_data(json!({ "model": name }))
}

fn field_protected(model: &str) -> Error {
    Error::msg(
        ErrorCode::FieldSystemProtected,
        format!("Fields of system model {model} cannot be changed"),
    )
    .with_data(json!({ "model": model }))
}

fn field_not_found(model: &str, field: &str) -> Error {
    Error::msg(
        ErrorCode::FieldNotFound,
        format!("Field not found: {}.{}", model, ident::clip(field)),
    )
    .with_data(json!({"model": model, "field": ident::clip(field)}))
}

fn field_exists(model: &str, field: &str) -> Error {
    Error::msg(
        ErrorCode::FieldExists,
        format!("Field already exists: {model}.{field}"),
    )
    .with_data(json!({"model": model, "field": field}))
}

/// A name in the body must equal the one in the URL (names never change by PUT).
fn same_name(body: &Option<String>, url: &str, key: &str) -> Result<()> {
    match body {
        Some(n) if n != url => Err(Error::field_invalid(
            key,
            &format!("\"{url}\" (names cannot be changed)"),
        )),
        _ => Ok(()),
    }
}

fn body_array(body: Option<&Value>) -> Result<&Vec<Value>> {
    match body {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(Error::new(ErrorCode::ValidationBodyNotArray)),
    }
}

/// Loads a model inside the write transaction; internal/malformed names are "not found".
async fn load(tx: &mut Box<dyn DescribeTx>, name: &str) -> Result<ModelDef> {
    let id = ident::model_ref(name).ok_or_else(|| model_not_found(name))?;
    tx.load_model(&id)
        .await?
        .ok_or_else(|| model_not_found(name))
}

/// Relationship checks that need the rest of the tenant: the target exists (or is the model
/// being created) and the relationship name is unique per parent.
async fn check_links(
    tx: &mut Box<dyn DescribeTx>,
    f: &FieldDef,
    creating: Option<&str>,
) -> Result<()> {
    let Some(target) = &f.related_model else {
        return Ok(());
    };
    if creating != Some(target.as_str()) {
        let id = ident::model_ref(target).ok_or_else(|| {
            body::relationship(
                "related_model",
                format!("related_model {} does not exist", ident::clip(target)),
            )
        })?;
        if tx.load_model(&id).await?.is_none() {
            return Err(body::relationship(
                "related_model",
                format!("related_model {} does not exist", ident::clip(target)),
            ));
        }
    }
    if let (Some(name), Some(id)) = (&f.relationship_name, ident::model_ref(target)) {
        let clash = tx.fields_targeting(&id).await?.into_iter().any(|o| {
            o.relationship_name.as_deref() == Some(name.as_str())
                && !(o.model_name == f.model_name && o.field_name == f.field_name)
        });
        if clash {
            return Err(body::relationship(
                "relationship_name",
                format!("relationship_name {name} is already used for model {target}"),
            ));
        }
    }
    Ok(())
}

impl DescribeService {
    /// `GET /api/describe`.
    pub async fn list_models(&self, ctx: &TenantCtx) -> Result<Vec<String>> {
        require_read(ctx)?;
        self.list(ctx).await
    }

    /// `GET /api/describe/:model`.
    pub async fn get_model(&self, ctx: &TenantCtx, name: &str) -> Result<std::sync::Arc<ModelDef>> {
        require_read(ctx)?;
        self.model(ctx, name).await
    }

    /// `GET /api/describe/:model/fields/:field`.
    pub async fn get_field(&self, ctx: &TenantCtx, model: &str, field: &str) -> Result<FieldDef> {
        let m = self.get_model(ctx, model).await?;
        m.field(field)
            .cloned()
            .ok_or_else(|| field_not_found(model, field))
    }

    /// `POST /api/describe/:model` with optional inline fields → the created model.
    pub async fn create_model(
        &self,
        ctx: &TenantCtx,
        url_name: &str,
        body: Option<&Value>,
        force: bool,
    ) -> Result<ModelDef> {
        require_sudo(ctx, url_name)?;
        let p: ModelPatch = body::parse_model(body, true)?;
        if let Some(n) = &p.model_name {
            if n != url_name && !force {
                return Err(Error::msg(
                    ErrorCode::ModelNameMismatch,
                    format!(
                        "Body model_name {} differs from the URL {}",
                        ident::clip(n),
                        ident::clip(url_name)
                    ),
                )
                .with_data(
                    json!({"model": ident::clip(url_name), "body_model_name": ident::clip(n)}),
                ));
            }
        }
        if SYSTEM_MODELS.contains(&url_name) {
            return Err(model_protected(url_name));
        }
        let name: Ident = ident::model_name(url_name)?;
        let mut fields: Vec<FieldDef> = Vec::new();
        for fp in p.fields.iter().flatten() {
            let fname = fp.field_name.as_deref().unwrap_or_default();
            same_name(&fp.model_name, name.as_str(), "model_name")?;
            let fid = ident::field_name(fname)?;
            if fields.iter().any(|f| f.field_name == fname) {
                return Err(field_exists(name.as_str(), fname));
            }
            let f = rules::new_field(name.as_str(), &fid, fp)?;
            // Two inline fields may not claim the same relationship name of one parent.
            if f.relationship_name.is_some()
                && fields.iter().any(|o| {
                    o.related_model == f.related_model && o.relationship_name == f.relationship_name
                })
            {
                return Err(body::relationship(
                    "relationship_name",
                    "relationship_name is used twice for the same related_model",
                ));
            }
            fields.push(f);
        }
        let now = Ts::now();
        let model = ModelDef {
            model_name: name.as_str().to_owned(),
            status: p.status.unwrap_or_else(|| "active".to_owned()),
            description: match p.description {
                body::Patch::Set(d) => Some(d),
                _ => None,
            },
            sudo: p.sudo.unwrap_or(false),
            frozen: p.frozen.unwrap_or(false),
            immutable: p.immutable.unwrap_or(false),
            external: p.external.unwrap_or(false),
            passthrough: p.passthrough.unwrap_or(false),
            created_at: now,
            updated_at: now,
            fields,
        };
        let mut tx = self.store.begin(ctx).await?;
        if tx.load_model(&name).await?.is_some() {
            return Err(Error::msg(
                ErrorCode::ModelExists,
                format!("Model already exists: {name}"),
            )
            .with_data(json!({ "model": name.as_str() })));
        }
        for f in &model.fields {
            check_links(&mut tx, f, Some(name.as_str())).await?;
        }
        tx.create_model(&model).await?;
        let out = load(&mut tx, name.as_str()).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// `PUT /api/describe/:model` → the model.
    pub async fn update_model(
        &self,
        ctx: &TenantCtx,
        name: &str,
        body: Option<&Value>,
    ) -> Result<ModelDef> {
        require_sudo(ctx, name)?;
        let p = body::parse_model(body, false)?;
        let mut tx = self.store.begin(ctx).await?;
        let mut m = load(&mut tx, name).await?;
        if m.is_system() {
            return Err(model_protected(name));
        }
        same_name(&p.model_name, name, "model_name")?;
        if !p.has_changes() {
            return Err(Error::msg(
                ErrorCode::ModelNoUpdates,
                "The body has no model property to change",
            ));
        }
        if let Some(s) = p.status {
            m.status = s;
        }
        p.description.apply(&mut m.description);
        for (dst, v) in [
            (&mut m.sudo, p.sudo),
            (&mut m.frozen, p.frozen),
            (&mut m.immutable, p.immutable),
            (&mut m.external, p.external),
            (&mut m.passthrough, p.passthrough),
        ] {
            if let Some(v) = v {
                *dst = v;
            }
        }
        tx.update_model(&m).await?;
        let out = load(&mut tx, name).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// `DELETE /api/describe/:model`.
    pub async fn delete_model(&self, ctx: &TenantCtx, name: &str) -> Result<Value> {
        require_sudo(ctx, name)?;
        let mut tx = self.store.begin(ctx).await?;
        let m = load(&mut tx, name).await?;
        if m.is_system() {
            return Err(model_protected(name));
        }
        let id = Ident::trusted(m.model_name.clone());
        let users: Vec<String> = tx
            .fields_targeting(&id)
            .await?
            .into_iter()
            .filter(|f| f.model_name != m.model_name)
            .map(|f| format!("{}.{}", f.model_name, f.field_name))
            .collect();
        if !users.is_empty() {
            return Err(Error::msg(
                ErrorCode::ModelInUse,
                format!("Model {name} is the related_model of {}", users.join(", ")),
            )
            .with_data(json!({"model": name, "fields": users})));
        }
        tx.drop_model(&id).await?;
        tx.commit().await?;
        Ok(json!({"model_name": m.model_name, "dropped": true}))
    }

    /// `GET /api/describe/:model/fields`.
    pub async fn list_fields(&self, ctx: &TenantCtx, model: &str) -> Result<Vec<FieldDef>> {
        Ok(self.get_model(ctx, model).await?.fields.clone())
    }

    /// `POST /api/describe/:model/fields` (array) → the created fields.
    pub async fn create_fields(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
    ) -> Result<Vec<FieldDef>> {
        require_sudo(ctx, model)?;
        let items = body::parse_field_array(body_array(body)?, "")?;
        self.add_fields(ctx, model, items).await
    }

    /// `POST /api/describe/:model/fields/:field` → the created field.
    pub async fn create_field(
        &self,
        ctx: &TenantCtx,
        model: &str,
        field: &str,
        body: Option<&Value>,
    ) -> Result<FieldDef> {
        require_sudo(ctx, model)?;
        let p = single_field(field, body)?;
        let mut out = self.add_fields(ctx, model, vec![p]).await?;
        out.pop()
            .ok_or_else(|| Error::internal("created field missing"))
    }

    async fn add_fields(
        &self,
        ctx: &TenantCtx,
        model: &str,
        items: Vec<FieldPatch>,
    ) -> Result<Vec<FieldDef>> {
        let mut tx = self.store.begin(ctx).await?;
        let m = load(&mut tx, model).await?;
        if m.is_system() {
            return Err(field_protected(model));
        }
        let id = Ident::trusted(m.model_name.clone());
        let mut names: Vec<String> = Vec::new();
        for p in &items {
            let fname = p.field_name.as_deref().unwrap_or_default();
            same_name(&p.model_name, model, "model_name")?;
            let fid = ident::field_name(fname)?;
            if m.field(fname).is_some() || names.iter().any(|n| n == fname) {
                return Err(field_exists(model, fname));
            }
            let f = rules::new_field(model, &fid, p)?;
            check_links(&mut tx, &f, None).await?;
            tx.add_field(&id, &f).await?;
            names.push(fname.to_owned());
        }
        let after = load(&mut tx, model).await?;
        tx.commit().await?;
        Ok(after
            .fields
            .into_iter()
            .filter(|f| names.contains(&f.field_name))
            .collect())
    }

    /// `PUT /api/describe/:model/fields` (array of `{field_name, …changes}`).
    pub async fn update_fields(
        &self,
        ctx: &TenantCtx,
        model: &str,
        body: Option<&Value>,
    ) -> Result<Vec<FieldDef>> {
        require_sudo(ctx, model)?;
        let items = body::parse_field_array(body_array(body)?, "")?;
        self.change_fields(ctx, model, items).await
    }

    /// `PUT /api/describe/:model/fields/:field` (partial field).
    pub async fn update_field(
        &self,
        ctx: &TenantCtx,
        model: &str,
        field: &str,
        body: Option<&Value>,
    ) -> Result<FieldDef> {
        require_sudo(ctx, model)?;
        let p = single_field(field, body)?;
        let mut out = self.change_fields(ctx, model, vec![p]).await?;
        out.pop()
            .ok_or_else(|| Error::internal("changed field missing"))
    }

    async fn change_fields(
        &self,
        ctx: &TenantCtx,
        model: &str,
        items: Vec<FieldPatch>,
    ) -> Result<Vec<FieldDef>> {
        let mut tx = self.store.begin(ctx).await?;
        let m = load(&mut tx, model).await?;
        if m.is_system() {
            return Err(field_protected(model));
        }
        let id = Ident::trusted(m.model_name.clone());
        let mut names: Vec<String> = Vec::new();
        for p in &items {
            let fname = p.field_name.as_deref().unwrap_or_default();
            same_name(&p.model_name, model, "model_name")?;
            // Re-read: an earlier item of the same body may have changed this field.
            let current = load(&mut tx, model).await?;
            let old = current
                .field(fname)
                .cloned()
                .ok_or_else(|| field_not_found(model, fname))?;
            if let Some(t) = p.field_type {
                rules::check_type_change(old.field_type, t)?;
            }
            let new = rules::check(rules::merge(&old, p))?;
            check_links(&mut tx, &new, None).await?;
            tx.alter_field(&id, &old, &new).await?;
            names.push(fname.to_owned());
        }
        let after = load(&mut tx, model).await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(names.len());
        for n in &names {
            if let Some(f) = after.field(n) {
                out.push(f.clone());
            }
        }
        Ok(out)
    }

    /// `DELETE /api/describe/:model/fields/:field`.
    pub async fn delete_field(&self, ctx: &TenantCtx, model: &str, field: &str) -> Result<Value> {
        require_sudo(ctx, model)?;
        let mut tx = self.store.begin(ctx).await?;
        let m = load(&mut tx, model).await?;
        if m.is_system() {
            return Err(field_protected(model));
        }
        let f = m
            .field(field)
            .cloned()
            .ok_or_else(|| field_not_found(model, field))?;
        tx.drop_field(&Ident::trusted(m.model_name.clone()), &f)
            .await?;
        tx.commit().await?;
        Ok(json!({"model_name": m.model_name, "field_name": f.field_name, "dropped": true}))
    }
}

/// The body of a single-field route (`…/fields/:field`): its `field_name`, if given, must be
/// the URL's.
fn single_field(field: &str, body: Option<&Value>) -> Result<FieldPatch> {
    let mut p = body::parse_field(body.unwrap_or(&Value::Object(Default::default())), "")?;
    same_name(&p.field_name, field, "field_name")?;
    p.field_name = Some(field.to_owned());
    Ok(p)
}
