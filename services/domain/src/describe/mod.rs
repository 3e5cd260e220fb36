//! Describe (A4): models and fields. Reads are served from a per-pod metadata cache keyed by
//! `(tenant_id, model)` that is valid only while the caller's `ctx.meta_version` equals the
//! version the entry was loaded at; every describe write bumps that version in the same
//! transaction as its DDL, so every pod sees a change on the very next request.

pub mod body;
mod cache;
pub mod rules;
mod writes;

use crate::ident;
use crate::model::{FieldDef, ModelDef};
use crate::ports::describe::DescribeStore;
use crate::{Error, ErrorCode, Result, TenantCtx};
use cache::MetaCache;
use serde_json::json;
use std::sync::Arc;

/// Models and fields of a tenant, with a per-pod metadata cache.
pub struct DescribeService {
    store: Arc<dyn DescribeStore>,
    cache: MetaCache,
}

/// `404 MODEL_NOT_FOUND` naming the model.
pub(crate) fn model_not_found(name: &str) -> Error {
    Error::msg(
        ErrorCode::ModelNotFound,
        format!("Model not found: {}", ident::clip(name)),
    )
    .with_data(json!({ "model": ident::clip(name) }))
}

impl DescribeService {
    pub fn new(store: Arc<dyn DescribeStore>) -> Self {
        Self {
            store,
            cache: MetaCache::default(),
        }
    }

    /// Model definition with fields in definition order; system models included (status
    /// "system"); served from the per-pod cache valid at `ctx.meta_version`;
    /// unknown (or internal table, or malformed name) → `404 MODEL_NOT_FOUND`.
    pub async fn model(&self, ctx: &TenantCtx, name: &str) -> Result<Arc<ModelDef>> {
        let Some(id) = ident::model_ref(name) else {
            return Err(model_not_found(name));
        };
        if let Some(m) = self.cache.model(ctx, id.as_str()) {
            return Ok(m);
        }
        let m = self
            .store
            .load_model(ctx, &id)
            .await?
            .ok_or_else(|| model_not_found(name))?;
        let m = Arc::new(m);
        self.cache.put_model(ctx, id.as_str(), m.clone());
        Ok(m)
    }

    /// The last cached definition of a model with the metadata version it was loaded at, or
    /// `None`; no store access. Used by reads that check the version in their own statement.
    pub fn cached_model(&self, tenant_id: uuid::Uuid, name: &str) -> Option<(i64, Arc<ModelDef>)> {
        self.cache.model_any(tenant_id, name)
    }

    /// The child field whose `relationship_name` = `relationship` and `related_model` =
    /// `parent` (any model of the tenant) → (child model, field);
    /// none → `404 MODEL_RELATIONSHIP_NOT_FOUND`.
    pub async fn relationship(
        &self,
        ctx: &TenantCtx,
        parent: &str,
        relationship: &str,
    ) -> Result<(Arc<ModelDef>, FieldDef)> {
        let not_found = || {
            Error::msg(
                ErrorCode::ModelRelationshipNotFound,
                format!(
                    "No relationship {} targets model {}",
                    ident::clip(relationship),
                    ident::clip(parent)
                ),
            )
            .with_data(
                json!({"model": ident::clip(parent), "relationship": ident::clip(relationship)}),
            )
        };
        for (child, field) in self.children(ctx, parent).await?.iter() {
            let model = self.model(ctx, child).await?;
            if let Some(f) = model.field(field) {
                if f.relationship_name.as_deref() == Some(relationship)
                    && f.related_model.as_deref() == Some(parent)
                {
                    let f = f.clone();
                    return Ok((model, f));
                }
            }
        }
        Err(not_found())
    }

    /// Children with `cascade_delete` pointing at `parent` (for trash/restore/purge cascades).
    pub async fn cascade_children(
        &self,
        ctx: &TenantCtx,
        parent: &str,
    ) -> Result<Vec<(Arc<ModelDef>, FieldDef)>> {
        let mut out = Vec::new();
        for (child, field) in self.children(ctx, parent).await?.iter() {
            let model = self.model(ctx, child).await?;
            if let Some(f) = model.field(field) {
                if f.cascade_delete && f.related_model.as_deref() == Some(parent) {
                    let f = f.clone();
                    out.push((model, f));
                }
            }
        }
        Ok(out)
    }

    /// `(child model, field)` of every field targeting `parent`, cached like models.
    async fn children(&self, ctx: &TenantCtx, parent: &str) -> Result<Arc<Vec<(String, String)>>> {
        let Some(id) = ident::model_ref(parent) else {
            return Ok(Arc::new(Vec::new()));
        };
        if let Some(c) = self.cache.children(ctx, id.as_str()) {
            return Ok(c);
        }
        let c = Arc::new(self.store.fields_targeting(ctx, &id).await?);
        self.cache.put_children(ctx, id.as_str(), c.clone());
        Ok(c)
    }

    /// Sorted model names, system models included (`GET /api/describe`).
    pub async fn list(&self, ctx: &TenantCtx) -> Result<Vec<String>> {
        self.store.model_names(ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::Ident;
    use crate::model::ModelDef;
    use crate::ports::describe::DescribeTx;
    use crate::{AuthInfo, AuthType, Role};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store that counts loads and always answers one model `orders`.
    struct Counting(AtomicUsize);

    #[async_trait::async_trait]
    impl DescribeStore for Counting {
        async fn model_names(&self, _: &TenantCtx) -> Result<Vec<String>> {
            Ok(vec!["orders".into()])
        }
        async fn load_model(&self, _: &TenantCtx, m: &Ident) -> Result<Option<ModelDef>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok((m.as_str() == "orders").then(|| ModelDef::active("orders", vec![])))
        }
        async fn fields_targeting(
            &self,
            _: &TenantCtx,
            _: &Ident,
        ) -> Result<Vec<(String, String)>> {
            Ok(vec![])
        }
        async fn begin(&self, _: &TenantCtx) -> Result<Box<dyn DescribeTx>> {
            Err(Error::new(ErrorCode::Internal))
        }
    }

    fn ctx(version: i64) -> TenantCtx {
        TenantCtx {
            tenant_id: uuid::Uuid::nil(),
            tenant: Ident::trusted("acme"),
            schema: Ident::trusted("ns_tenant_acme"),
            tenant_status: "active".into(),
            user_id: uuid::Uuid::nil(),
            username: "root".into(),
            role: Role::Root,
            auth: AuthInfo {
                auth_type: AuthType::Username,
                token_id: None,
                key_id: None,
                key_fingerprint: None,
                api_key_id: None,
                is_sudo_token: false,
                is_fake: false,
                faked_by: None,
                issued_at: None,
                expires_at: None,
            },
            meta_version: version,
            request_id: "r".into(),
        }
    }

    #[tokio::test]
    async fn cache_is_valid_only_at_its_version() {
        let store = Arc::new(Counting(AtomicUsize::new(0)));
        let svc = DescribeService::new(store.clone());
        svc.model(&ctx(1), "orders").await.unwrap();
        svc.model(&ctx(1), "orders").await.unwrap();
        assert_eq!(
            store.0.load(Ordering::SeqCst),
            1,
            "second read served from cache"
        );
        svc.model(&ctx(2), "orders").await.unwrap();
        assert_eq!(store.0.load(Ordering::SeqCst), 2, "new version reloads");
        let e = svc.model(&ctx(2), "nope").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ModelNotFound);
        // Internal tables and malformed names never reach the store.
        let before = store.0.load(Ordering::SeqCst);
        for bad in ["credentials", "x\"y", "Orders"] {
            assert_eq!(
                svc.model(&ctx(2), bad).await.unwrap_err().code,
                ErrorCode::ModelNotFound
            );
        }
        assert_eq!(store.0.load(Ordering::SeqCst), before);
        let e = svc
            .relationship(&ctx(2), "orders", "lines")
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ModelRelationshipNotFound);
        assert!(svc
            .cascade_children(&ctx(2), "orders")
            .await
            .unwrap()
            .is_empty());
    }
}
