//! Describe DDL (A4.5): table, column and index statements built from validated metadata.
//! Identifiers are validated `Ident`s, quoted and schema-qualified; DDL cannot bind values,
//! so DEFAULT literals are rendered from the validated typed value by one quoting helper.

use abbotik_domain::ident::Ident;
use abbotik_domain::model::{FieldDef, ModelDef};
use abbotik_domain::{Error, ErrorCode, Result};
use deadpool_postgres::Object;

fn todo_err() -> Error {
    Error::new(ErrorCode::NotImplemented)
}

pub(super) async fn create_model(_c: &Object, _s: &Ident, _m: &ModelDef) -> Result<()> {
    Err(todo_err())
}
pub(super) async fn update_model(_c: &Object, _s: &Ident, _m: &ModelDef) -> Result<()> {
    Err(todo_err())
}
pub(super) async fn drop_model(_c: &Object, _s: &Ident, _m: &Ident) -> Result<()> {
    Err(todo_err())
}
pub(super) async fn add_field(_c: &Object, _s: &Ident, _m: &Ident, _f: &FieldDef) -> Result<()> {
    Err(todo_err())
}
pub(super) async fn alter_field(
    _c: &Object,
    _s: &Ident,
    _m: &Ident,
    _o: &FieldDef,
    _n: &FieldDef,
) -> Result<()> {
    Err(todo_err())
}
pub(super) async fn drop_field(_c: &Object, _s: &Ident, _m: &Ident, _f: &FieldDef) -> Result<()> {
    Err(todo_err())
}
