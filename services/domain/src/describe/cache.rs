//! The per-pod metadata cache. An entry is `(meta_version, value)`; it is used only when
//! the caller's `ctx.meta_version` (read from the tenant's control row on this request) is
//! the same, so a describe write on any pod invalidates every pod's entries at once.

use crate::model::ModelDef;
use crate::TenantCtx;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Upper bound on entries; past it the cache is emptied (entries are cheap to reload).
const MAX_ENTRIES: usize = 20_000;

type Key = (Uuid, String);
/// `(child model, field)` pairs targeting one parent.
pub(super) type Children = Arc<Vec<(String, String)>>;
type Versioned<V> = Mutex<HashMap<Key, (i64, V)>>;

#[derive(Default)]
pub(super) struct MetaCache {
    models: Versioned<Arc<ModelDef>>,
    children: Versioned<Children>,
}

fn get<V: Clone>(map: &Versioned<V>, ctx: &TenantCtx, name: &str) -> Option<V> {
    let m = map.lock();
    match m.get(&(ctx.tenant_id, name.to_owned())) {
        Some((v, val)) if *v == ctx.meta_version => Some(val.clone()),
        _ => None,
    }
}

fn put<V>(map: &Versioned<V>, ctx: &TenantCtx, name: &str, val: V) {
    let mut m = map.lock();
    if m.len() >= MAX_ENTRIES {
        m.clear();
    }
    m.insert((ctx.tenant_id, name.to_owned()), (ctx.meta_version, val));
}

impl MetaCache {
    /// The cached model at whatever version it was loaded (the caller re-checks the version
    /// against the one its statement read before trusting it).
    pub fn model_any(&self, tenant_id: Uuid, name: &str) -> Option<(i64, Arc<ModelDef>)> {
        let m = self.models.lock();
        m.get(&(tenant_id, name.to_owned()))
            .map(|(v, val)| (*v, val.clone()))
    }

    pub fn model(&self, ctx: &TenantCtx, name: &str) -> Option<Arc<ModelDef>> {
        get(&self.models, ctx, name)
    }

    pub fn put_model(&self, ctx: &TenantCtx, name: &str, m: Arc<ModelDef>) {
        put(&self.models, ctx, name, m);
    }

    pub fn children(&self, ctx: &TenantCtx, parent: &str) -> Option<Children> {
        get(&self.children, ctx, parent)
    }

    pub fn put_children(&self, ctx: &TenantCtx, parent: &str, c: Children) {
        put(&self.children, ctx, parent, c);
    }
}
