//! Query options of `POST /api/bulk/import` (A8.3): strategy, dry run, models, include
//! parts, confirmation. `null`-like empty values are absent (A1.1).

use crate::{Error, Result};

/// The strategies of A8.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Upsert,
    Merge,
    Replace,
    Skip,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "upsert" => Strategy::Upsert,
            "merge" => Strategy::Merge,
            "replace" => Strategy::Replace,
            "skip" => Strategy::Skip,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Upsert => "upsert",
            Strategy::Merge => "merge",
            Strategy::Replace => "replace",
            Strategy::Skip => "skip",
        }
    }
}

/// Query options of `POST /api/bulk/import`.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub strategy: Strategy,
    pub dry_run: bool,
    /// Import only these models (`models=a,b`); `None` = all.
    pub models: Option<Vec<String>>,
    pub describe: bool,
    pub data: bool,
    pub confirm: bool,
}

fn flag(get: &dyn Fn(&str) -> Option<String>, k: &str) -> Result<bool> {
    match get(k).as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("" | "true" | "1") => Ok(true),
        Some(_) => Err(Error::field_invalid(k, "true or false")),
    }
}

fn list(v: Option<String>) -> Option<Vec<String>> {
    let v = v?;
    let items: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}

impl ImportOptions {
    /// From the query parameters (`get` returns a parameter's value).
    pub fn from_query(get: &dyn Fn(&str) -> Option<String>) -> Result<ImportOptions> {
        let strategy = match get("strategy").as_deref() {
            None | Some("") => Strategy::Upsert,
            Some(s) => Strategy::parse(s).ok_or_else(|| {
                Error::field_invalid("strategy", "one of upsert, merge, replace, skip")
            })?,
        };
        let (describe, data) = match list(get("include")) {
            None => (true, true),
            Some(items) => {
                let mut d = (false, false);
                for i in &items {
                    match i.as_str() {
                        "describe" => d.0 = true,
                        "data" => d.1 = true,
                        _ => return Err(Error::field_invalid("include", "describe and/or data")),
                    }
                }
                d
            }
        };
        Ok(ImportOptions {
            strategy,
            dry_run: flag(get, "dry_run")?,
            models: list(get("models")),
            describe,
            data,
            confirm: flag(get, "confirm")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use std::collections::HashMap;

    fn opts(q: &[(&str, &str)]) -> Result<ImportOptions> {
        let m: HashMap<String, String> = q
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ImportOptions::from_query(&|k: &str| m.get(k).cloned())
    }

    #[test]
    fn query_options() {
        let o = opts(&[]).unwrap();
        assert_eq!(o.strategy, Strategy::Upsert);
        assert!(o.describe && o.data && !o.dry_run && !o.confirm && o.models.is_none());
        let o = opts(&[
            ("strategy", "replace"),
            ("dry_run", ""),
            ("include", "data"),
            ("models", "a, b,,"),
            ("confirm", "1"),
        ])
        .unwrap();
        assert_eq!(o.strategy, Strategy::Replace);
        assert!(o.dry_run && o.confirm && o.data && !o.describe);
        assert_eq!(o.models, Some(vec!["a".to_owned(), "b".to_owned()]));
        for bad in [
            ("strategy", "overwrite"),
            ("include", "data,acl"),
            ("dry_run", "yes"),
        ] {
            assert_eq!(
                opts(&[bad]).unwrap_err().code,
                ErrorCode::ValidationFieldInvalid,
                "{bad:?}"
            );
        }
    }
}
