//! Any input to the `where` parser (A6.3–A6.5) either parses or fails with a client error
//! of the FILTER_* / VALIDATION_* families — never a panic, never an internal error.

#![no_main]

use abbotik_domain::data::filter::parse_param;
use abbotik_domain::model::{FieldDef, FieldIndexes, FieldType, ModelDef};
use abbotik_domain::time::Ts;
use libfuzzer_sys::fuzz_target;
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
static MODEL: LazyLock<ModelDef> = LazyLock::new(|| ModelDef {
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse_param(&MODEL, text) {
        let code = e.code.as_str();
        assert!(
            code.starts_with("FILTER_") || code.starts_with("VALIDATION_"),
            "{code} for {text:?}"
        );
    }
});
