//! The model every fuzz target parses against: one field of every type.

use abbotik_domain::model::{FieldDef, FieldType, ModelDef};
use std::sync::LazyLock;

pub static MODEL: LazyLock<ModelDef> = LazyLock::new(|| {
    let f = |name: &str, ty: FieldType| FieldDef::blank("things", name, ty);
    ModelDef::active(
        "things",
        vec![
            f("name", FieldType::Text),
            f("age", FieldType::Integer),
            f("price", FieldType::Decimal),
            f("ok", FieldType::Boolean),
            f("at", FieldType::Timestamp),
            f("day", FieldType::Date),
            f("ref", FieldType::Uuid),
            f("meta", FieldType::Jsonb),
            f("tags", FieldType::TextArray),
            f("nums", FieldType::IntegerArray),
        ],
    )
});
