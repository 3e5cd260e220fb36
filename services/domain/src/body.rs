//! Shapes of request bodies shared by the services: the JSON-object body where an empty
//! body means `{}`.

use crate::{Error, ErrorCode, Result};
use serde_json::{Map, Value};
use std::sync::LazyLock;

static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// The body as an object: no body or `null` is `{}`; anything else that is not an object is
/// `400 VALIDATION_BODY_NOT_OBJECT` with `message`.
pub fn object_or_empty<'a>(
    body: Option<&'a Value>,
    message: &'static str,
) -> Result<&'a Map<String, Value>> {
    match body {
        None | Some(Value::Null) => Ok(&EMPTY),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(Error::msg(ErrorCode::ValidationBodyNotObject, message)),
    }
}
