//! Model and field definitions (A4.2–A4.4) as stored in a tenant's `models` and `fields`
//! tables and as shown by describe. Parsing describe bodies into these lives in `describe`.

use crate::time::Ts;
use serde::Serialize;
use serde_json::{Number, Value};

/// Field types (A4.3). `numeric` is an input alias of `decimal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Text,
    Integer,
    Bigserial,
    Decimal,
    Boolean,
    Timestamp,
    Date,
    Uuid,
    Jsonb,
    Binary,
    TextArray,
    IntegerArray,
    DecimalArray,
    UuidArray,
}

impl FieldType {
    /// Names reported in `data.valid_types`.
    pub const VALID: &'static [&'static str] = &[
        "text",
        "integer",
        "bigserial",
        "decimal",
        "numeric",
        "boolean",
        "timestamp",
        "date",
        "uuid",
        "jsonb",
        "binary",
        "text[]",
        "integer[]",
        "decimal[]",
        "numeric[]",
        "uuid[]",
    ];

    pub fn parse(s: &str) -> Option<FieldType> {
        Some(match s {
            "text" => Self::Text,
            "integer" => Self::Integer,
            "bigserial" => Self::Bigserial,
            "decimal" | "numeric" => Self::Decimal,
            "boolean" => Self::Boolean,
            "timestamp" => Self::Timestamp,
            "date" => Self::Date,
            "uuid" => Self::Uuid,
            "jsonb" => Self::Jsonb,
            "binary" => Self::Binary,
            "text[]" => Self::TextArray,
            "integer[]" => Self::IntegerArray,
            "decimal[]" | "numeric[]" => Self::DecimalArray,
            "uuid[]" => Self::UuidArray,
            _ => return None,
        })
    }

    /// The reported name (`decimal`, never `numeric`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Bigserial => "bigserial",
            Self::Decimal => "decimal",
            Self::Boolean => "boolean",
            Self::Timestamp => "timestamp",
            Self::Date => "date",
            Self::Uuid => "uuid",
            Self::Jsonb => "jsonb",
            Self::Binary => "binary",
            Self::TextArray => "text[]",
            Self::IntegerArray => "integer[]",
            Self::DecimalArray => "decimal[]",
            Self::UuidArray => "uuid[]",
        }
    }

    /// The PostgreSQL column type (a fixed keyword, never user text).
    pub const fn pg_type(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Bigserial => "bigserial",
            Self::Decimal => "numeric",
            Self::Boolean => "boolean",
            Self::Timestamp => "timestamptz",
            Self::Date => "date",
            Self::Uuid => "uuid",
            Self::Jsonb => "jsonb",
            Self::Binary => "bytea",
            Self::TextArray => "text[]",
            Self::IntegerArray => "integer[]",
            Self::DecimalArray => "numeric[]",
            Self::UuidArray => "uuid[]",
        }
    }

    pub const fn is_array(self) -> bool {
        matches!(
            self,
            Self::TextArray | Self::IntegerArray | Self::DecimalArray | Self::UuidArray
        )
    }

    /// Element type of an array type; the type itself otherwise.
    pub const fn element(self) -> FieldType {
        match self {
            Self::TextArray => Self::Text,
            Self::IntegerArray => Self::Integer,
            Self::DecimalArray => Self::Decimal,
            Self::UuidArray => Self::Uuid,
            other => other,
        }
    }

    pub const fn is_numeric(self) -> bool {
        matches!(self, Self::Integer | Self::Bigserial | Self::Decimal)
    }
}

impl Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Input transforms applied before validation (A4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    Lowercase,
    Uppercase,
    Trim,
    NormalizeEmail,
    NormalizePhone,
}

impl Transform {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lowercase" => Self::Lowercase,
            "uppercase" => Self::Uppercase,
            "trim" => Self::Trim,
            "normalize_email" => Self::NormalizeEmail,
            "normalize_phone" => Self::NormalizePhone,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
            Self::Trim => "trim",
            Self::NormalizeEmail => "normalize_email",
            Self::NormalizePhone => "normalize_phone",
        }
    }

    pub fn apply(self, s: &str) -> String {
        match self {
            Self::Lowercase => s.to_lowercase(),
            Self::Uppercase => s.to_uppercase(),
            Self::Trim => s.trim().to_owned(),
            Self::NormalizeEmail => s.trim().to_lowercase(),
            Self::NormalizePhone => {
                let t = s.trim();
                let plus = t.starts_with('+');
                let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
                if plus {
                    format!("+{digits}")
                } else {
                    digits
                }
            }
        }
    }
}

/// `owned` or `referenced` (A4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipType {
    Owned,
    Referenced,
}

impl RelationshipType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owned" => Some(Self::Owned),
            "referenced" => Some(Self::Referenced),
            _ => None,
        }
    }
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owned => "owned",
            Self::Referenced => "referenced",
        }
    }
}

/// Index names recorded in field metadata (A4.5), never shown to clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldIndexes {
    pub unique: Option<String>,
    pub index: Option<String>,
    pub search: Option<String>,
    pub relationship: Option<String>,
}

/// A field as describe shows it (A4.1 field object), plus internal index names.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDef {
    pub model_name: String,
    pub field_name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub required: bool,
    pub default_value: Option<Value>,
    pub description: Option<String>,
    pub minimum: Option<Number>,
    pub maximum: Option<Number>,
    pub pattern: Option<String>,
    pub enum_values: Option<Vec<String>>,
    pub is_array: bool,
    pub immutable: bool,
    pub sudo: bool,
    pub unique: bool,
    pub index: bool,
    pub searchable: bool,
    pub tracked: bool,
    pub transform: Option<Transform>,
    pub relationship_type: Option<RelationshipType>,
    pub related_model: Option<String>,
    pub related_field: Option<String>,
    pub relationship_name: Option<String>,
    pub cascade_delete: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
    #[serde(skip)]
    pub indexes: FieldIndexes,
}

impl FieldDef {
    /// A field of `field_type` with every property at its default (A4.4).
    pub fn blank(model: &str, name: &str, field_type: FieldType) -> FieldDef {
        let now = Ts::now();
        FieldDef {
            model_name: model.to_owned(),
            field_name: name.to_owned(),
            field_type,
            required: false,
            default_value: None,
            description: None,
            minimum: None,
            maximum: None,
            pattern: None,
            enum_values: None,
            is_array: field_type.is_array(),
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
            created_at: now,
            updated_at: now,
            indexes: FieldIndexes::default(),
        }
    }
}

/// A model as describe shows it (A4.1 model object).
#[derive(Debug, Clone, Serialize)]
pub struct ModelDef {
    pub model_name: String,
    pub status: String,
    pub description: Option<String>,
    pub sudo: bool,
    pub frozen: bool,
    pub immutable: bool,
    pub external: bool,
    pub passthrough: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub fields: Vec<FieldDef>,
}

impl ModelDef {
    /// An `active` user model with default flags and these fields.
    pub fn active(name: &str, fields: Vec<FieldDef>) -> ModelDef {
        let now = Ts::now();
        ModelDef {
            model_name: name.to_owned(),
            status: "active".into(),
            description: None,
            sudo: false,
            frozen: false,
            immutable: false,
            external: false,
            passthrough: false,
            created_at: now,
            updated_at: now,
            fields,
        }
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.field_name == name)
    }

    pub fn is_system(&self) -> bool {
        self.status == "system"
    }
}
