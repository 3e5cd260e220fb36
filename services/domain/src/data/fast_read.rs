//! The one-round-trip read behind `GET /api/data/:model/:id`: the caller's identity is
//! resolved by the same statement that reads the row (the hottest route of the product).

use super::access::{self, Op};
use super::filter::Filter;
use super::query::ReadOptions;
use super::records::{scope_of, select_by_id};
use super::{record_not_found, DataService, Raw};
use crate::auth::{AuthService, Verified};
use crate::{Result, TenantCtx};
use std::sync::Arc;

/// Bench-only builds (`--features bench-fixed-identity`, never a normal build): the first
/// caller's identity, resolved once and then used for every request whatever its token, so
/// `scripts/bench` can measure what authentication costs by difference.
#[cfg(feature = "bench-fixed-identity")]
static FIXED_IDENTITY: std::sync::OnceLock<TenantCtx> = std::sync::OnceLock::new();

/// The bearer token of a request, and its verification if that already happened (the
/// rate-limit layer verifies it first).
pub struct Bearer<'a> {
    pub token: &'a str,
    pub verified: Option<Arc<Verified>>,
}

impl DataService {
    /// `GET /api/data/:model/:id` straight from a bearer token in ONE database round trip:
    /// the caller's identity is resolved by the same statement that reads the row, using the
    /// last cached model definition. Nothing is returned before the identity rules (A3.2)
    /// and the read permission pass; when the metadata version moved, or nothing is cached,
    /// or the request itself is malformed, it falls back to the ordinary path (identity
    /// first, then the read) so errors keep their order.
    pub async fn get_with_token(
        &self,
        auth: &AuthService,
        bearer: Bearer<'_>,
        request_id: String,
        model: &str,
        id: &str,
        opts: &Result<ReadOptions>,
    ) -> Result<(TenantCtx, Raw)> {
        let token = bearer.token;
        #[cfg(feature = "bench-fixed-identity")]
        if let Some(fixed) = FIXED_IDENTITY.get() {
            let ctx = TenantCtx {
                request_id,
                ..fixed.clone()
            };
            let opts = opts.as_ref().map_err(Clone::clone)?;
            let raw = self.get(&ctx, model, id, opts).await?;
            return Ok((ctx, raw));
        }
        let v = match bearer.verified {
            Some(v) => v,
            None => auth.verify(token).await?,
        };
        let fast = match (opts, self.describe.cached_model(v.tenant_id, model)) {
            (Ok(o), Some((version, m))) => {
                let pctx = AuthService::provisional(&v, version, request_id.clone());
                access::check(&pctx, &m, Op::Read)
                    .and_then(|()| select_by_id(&pctx, &m, id, o, scope_of(o), Filter::True))
                    .ok()
                    .map(|sel| (pctx, sel, version, m))
            }
            _ => None,
        };
        let guarded = match &fast {
            Some((pctx, sel, _, _)) => self.store.select_one_guarded(pctx, sel).await?,
            None => None,
        };
        if let (Some((_, _, version, m)), Some((identity, row))) = (fast, guarded) {
            let ctx = AuthService::finish(&v, identity, request_id.clone())?;
            if ctx.meta_version == version {
                access::check(&ctx, &m, Op::Read)?;
                let raw = row.ok_or_else(|| record_not_found(&m.model_name, id))?;
                #[cfg(feature = "bench-fixed-identity")]
                let _ = FIXED_IDENTITY.set(ctx.clone());
                return Ok((ctx, raw));
            }
        }
        let ctx = auth.authenticate(token, request_id).await?;
        let opts = opts.as_ref().map_err(Clone::clone)?;
        let raw = self.get(&ctx, model, id, opts).await?;
        Ok((ctx, raw))
    }
}
