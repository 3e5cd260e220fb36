//! The model every fuzz target parses against: one field of every type.

use abbotik_domain::model::{FieldDef, FieldIndexes, FieldType, ModelDef};
use abbotik_domain::time::Ts;
use std::sync::LazyLock;

fn field(name: &str, ty: FieldType) -> FieldDef {
    FieldDef {
        model_name: "things".into(),
        field_name: name.into(),
        field_type: ty,
        required: false,
        default_value: None,
        description: None,
        minimum: None,
        maximum: None,
        pattern: None,
        enum_values: None,
        is_array: ty.is_array(),
        immutable: false,
        sudo: false,
        unique: false,
        index: false,
        searchable: false,
        tracked: false,
        transform: None,
        relationship_type: None,
        related_model: None,
        related_field: None,
        relationship_name: None,
        cascade_delete: false,
        created_at: Ts::now(),
        updated_at: Ts::now(),
        indexes: FieldIndexes::default(),
    }
}

/// A model with a field of every type.
pub static MODEL: LazyLock<ModelDef> = LazyLock::new(|| ModelDef {
    model_name: "things".into(),
    status: "active".into(),
    description: None,
    sudo: false,
    frozen: false,
    immutable: false,
    external: false,
    passthrough: false,
    created_at: Ts::now(),
    updated_at: Ts::now(),
    fields: vec![
        field("name", FieldType::Text),
        field("age", FieldType::Integer),
        field("price", FieldType::Decimal),
        field("ok", FieldType::Boolean),
        field("at", FieldType::Timestamp),
        field("day", FieldType::Date),
        field("ref", FieldType::Uuid),
        field("meta", FieldType::Jsonb),
        field("tags", FieldType::TextArray),
        field("nums", FieldType::IntegerArray),
    ],
});

