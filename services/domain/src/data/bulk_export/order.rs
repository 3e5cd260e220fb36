//! The order of models in an export (A8.2): parents before children, so an importer that
//! reads line by line meets a parent's model and records before those that reference it.
//!
//! A model's parents are the `related_model`s of its relationship fields that are part of the
//! export. Kahn's algorithm, always taking the alphabetically first ready model, makes the
//! order deterministic. Self-references are ignored. A cycle (a → b → a) leaves no ready
//! model: the alphabetically first model still waiting is taken anyway, which breaks the
//! cycle at a fixed place. Import checks references at the end (A8.3 rule 1), so a broken
//! cycle still imports.

use crate::model::ModelDef;
use std::collections::{BTreeMap, BTreeSet};

/// Indexes into `models` in export order.
pub fn parents_first(models: &[&ModelDef]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.model_name.as_str(), i))
        .collect();
    // Parents of each model (within the export, self excluded), by name.
    let parents: Vec<BTreeSet<&str>> = models
        .iter()
        .map(|m| {
            m.fields
                .iter()
                .filter(|f| f.relationship_type.is_some())
                .filter_map(|f| f.related_model.as_deref())
                .filter(|p| *p != m.model_name && index.contains_key(p))
                .collect()
        })
        .collect();
    let mut waiting: BTreeSet<&str> = index.keys().copied().collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(models.len());
    while let Some(&first) = waiting.iter().next() {
        let ready = waiting
            .iter()
            .copied()
            .find(|n| parents[index[n]].iter().all(|p| done.contains(p)));
        let next = ready.unwrap_or(first);
        waiting.remove(next);
        done.insert(next);
        out.push(index[next]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FieldDef, FieldType, RelationshipType};

    fn model(name: &str, parents: &[&str]) -> ModelDef {
        let fields = parents
            .iter()
            .map(|p| {
                let mut f = FieldDef::blank(name, &format!("{p}_id"), FieldType::Uuid);
                f.relationship_type = Some(RelationshipType::Referenced);
                f.related_model = Some((*p).to_owned());
                f
            })
            .collect();
        ModelDef::active(name, fields)
    }

    fn names(models: &[ModelDef]) -> Vec<String> {
        let refs: Vec<&ModelDef> = models.iter().collect();
        parents_first(&refs)
            .into_iter()
            .map(|i| models[i].model_name.clone())
            .collect()
    }

    #[test]
    fn parents_come_first_then_alphabetical() {
        let m = vec![
            model("orders", &["customers"]),
            model("lines", &["orders", "products"]),
            model("customers", &[]),
            model("products", &[]),
            model("audit", &[]),
        ];
        assert_eq!(
            names(&m),
            ["audit", "customers", "orders", "products", "lines"]
        );
    }

    #[test]
    fn self_references_and_outside_parents_are_ignored() {
        let m = vec![model("nodes", &["nodes", "users"]), model("a", &["nodes"])];
        assert_eq!(names(&m), ["nodes", "a"]);
    }

    #[test]
    fn cycles_break_at_the_first_name() {
        let m = vec![
            model("b", &["a"]),
            model("a", &["b"]),
            model("c", &["b"]),
            model("z", &[]),
        ];
        // Nothing but z is ready at first; z goes, then the cycle breaks at "a".
        assert_eq!(names(&m), ["z", "a", "b", "c"]);
    }
}
