//! Port of aggregate reads (A7): a validated, plain description of one grouped query. The
//! adapter renders it as one statement; every output column is addressed by its position
//! (`c0`, `c1`, … in group-keys-then-aliases order), never by a client-chosen name.

use super::records::{Column, Table, TrashedScope};
use crate::data::filter::Filter;
use crate::{Result, TenantCtx};

/// An aggregate function over the filtered rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    /// `count(*)`.
    CountAll,
    /// `count(f)`: non-null values.
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// `count(DISTINCT f)`.
    Distinct,
}

/// One `alias → function` of `aggregate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Output key (the alias).
    pub key: String,
    pub func: AggFn,
    /// The argument (`None` only for [`AggFn::CountAll`]).
    pub column: Option<Column>,
}

/// `$dateTrunc` units (A7); `week` is the ISO week starting Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl DateUnit {
    /// All units by their wire (and PostgreSQL `date_trunc`) name.
    pub const ALL: [(&'static str, DateUnit); 8] = [
        ("second", DateUnit::Second),
        ("minute", DateUnit::Minute),
        ("hour", DateUnit::Hour),
        ("day", DateUnit::Day),
        ("week", DateUnit::Week),
        ("month", DateUnit::Month),
        ("quarter", DateUnit::Quarter),
        ("year", DateUnit::Year),
    ];

    /// The unit name (also PostgreSQL's `date_trunc` field).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, u)| *u == self)
            .map_or("day", |(n, _)| n)
    }
}

/// What a group key groups by.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupExpr {
    /// The column value itself.
    Field(Column),
    /// The start of the bucket holding a `timestamp`/`date` column, boundaries in `timezone`
    /// (a validated IANA name).
    DateTrunc {
        column: Column,
        unit: DateUnit,
        timezone: String,
    },
}

/// One `groupBy` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupKey {
    /// Output key (field name, `as`, or `<field>_<unit>`).
    pub key: String,
    pub expr: GroupExpr,
}

/// One ordering key: output column position (group keys first, then aggregates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggOrder {
    pub position: usize,
    pub desc: bool,
}

/// A validated aggregate query.
#[derive(Debug, Clone)]
pub struct AggregateQuery {
    pub table: Table,
    /// The `where` of the rows.
    pub filter: Filter,
    pub trashed: TrashedScope,
    pub groups: Vec<GroupKey>,
    pub aggregates: Vec<Aggregate>,
    /// Over the output columns, whose [`Column`] names are the positional `c<i>`.
    pub having: Filter,
    pub order: Vec<AggOrder>,
    pub limit: i64,
    pub offset: i64,
}

/// Runs aggregate queries.
#[async_trait::async_trait]
pub trait Aggregator: Send + Sync {
    /// The result rows as the JSON text of an array of objects (group keys, then aliases).
    async fn aggregate(&self, ctx: &TenantCtx, q: &AggregateQuery) -> Result<String>;

    /// Whether `name` is a time zone the database knows (IANA names).
    async fn timezone_known(&self, ctx: &TenantCtx, name: &str) -> Result<bool>;
}
