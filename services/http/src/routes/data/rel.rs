//! Handlers of the owned-relationship routes `/api/data/:model/:id/:relationship[/:child]`
//! (A5.3); their docs are in the parent module's `ROUTES`.

use super::{answer, json_only, read_opts, Res};
use crate::extract::{Ctx, JsonBody, Params};
use crate::state::AppState;
use abbotik_domain::data::RelPath;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

type Parent = Path<(String, String, String)>;
type Child = Path<(String, String, String, String)>;

pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((m, id, r)): Parent,
    p: Params,
    h: HeaderMap,
) -> Res {
    json_only(&p, &h)?;
    let raw = s
        .data
        .rel_list(
            &ctx,
            &RelPath {
                model: &m,
                id: &id,
                relationship: &r,
            },
            &read_opts(&p)?,
        )
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((m, id, r)): Parent,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s
        .data
        .rel_create(
            &ctx,
            &RelPath {
                model: &m,
                id: &id,
                relationship: &r,
            },
            b.as_ref(),
            &read_opts(&p)?,
        )
        .await?;
    answer(&s, StatusCode::CREATED, &raw, &p)
}

pub async fn update(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((m, id, r)): Parent,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s
        .data
        .rel_update(
            &ctx,
            &RelPath {
                model: &m,
                id: &id,
                relationship: &r,
            },
            b.as_ref(),
            &read_opts(&p)?,
        )
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

pub async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((m, id, r)): Parent,
    p: Params,
) -> Res {
    let permanent = p.flag("permanent", false)?;
    let raw = s
        .data
        .rel_delete(
            &ctx,
            &RelPath {
                model: &m,
                id: &id,
                relationship: &r,
            },
            permanent,
            &read_opts(&p)?,
        )
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

pub async fn get_child(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((m, id, r, c)): Child,
    p: Params,
    h: HeaderMap,
) -> Res {
    json_only(&p, &h)?;
    let raw = s
        .data
        .rel_get(
            &ctx,
            &RelPath {
                model: &m,
                id: &id,
                relationship: &r,
            },
            &c,
            &read_opts(&p)?,
        )
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

pub async fn update_child(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((m, id, r, c)): Child,
    p: Params,
    JsonBody(b): JsonBody,
) -> Res {
    let raw = s
        .data
        .rel_update_one(
            &ctx,
            &RelPath {
                model: &m,
                id: &id,
                relationship: &r,
            },
            &c,
            b.as_ref(),
            &read_opts(&p)?,
        )
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}

pub async fn remove_child(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((m, id, r, c)): Child,
    p: Params,
) -> Res {
    let permanent = p.flag("permanent", false)?;
    let raw = s
        .data
        .rel_delete_one(
            &ctx,
            &RelPath {
                model: &m,
                id: &id,
                relationship: &r,
            },
            &c,
            permanent,
            &read_opts(&p)?,
        )
        .await?;
    answer(&s, StatusCode::OK, &raw, &p)
}
