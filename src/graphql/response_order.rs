//! Responses in the order of the query, as the spec's ordered response map
//! asks. async-graphql resolves a selection's fields concurrently and keeps
//! them in the order they finish (async-graphql issue #612), so a field that
//! waits for the DataLoader (a nested list, `missingFields`) ends up after
//! those that did not wait.
//!
//! This step of the request pipeline (`pipeline`) puts them back: from each document it derives, once, the
//! response keys of every selection set in query order (fragments inlined),
//! and after execution reorders the response's objects in place, the ones
//! out of order only. No response is serialised twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Response, Value};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

/// Most documents whose plans are remembered; when full, it starts again.
const CAPACITY: usize = 256;

/// Most selections a plan may visit. Fragments are inlined, and a document
/// is planned before it is validated, so one whose fragments spread each
/// other many times over must not cost exponential work: past this, the
/// document gets no plan (its responses keep async-graphql's order, and
/// validation refuses such a document anyway).
const MAX_VISITS: usize = 10_000;

/// The response keys of a selection set in query order, each with the plan
/// of its own selection (merged over the places that select it).
#[derive(Debug, Default)]
struct Plan {
    keys: Vec<Name>,
    nested: Vec<Option<Plan>>,
}

/// The plans of a document's operations, by operation name (`None`: the
/// document's only operation).
type Plans = HashMap<Option<Name>, Plan>;

/// The plans of the documents seen, by text; one cache per schema, its
/// clones share it.
#[derive(Default, Clone)]
pub(super) struct ResponseOrder {
    plans: Arc<Mutex<HashMap<String, Arc<Plans>>>>,
}

impl ResponseOrder {
    /// One request's view of the cache.
    pub(super) fn for_request(&self) -> RequestOrder {
        RequestOrder {
            cache: self.plans.clone(),
            plans: Arc::default(),
        }
    }
}

/// One request's use of the plans.
pub(super) struct RequestOrder {
    cache: Arc<Mutex<HashMap<String, Arc<Plans>>>>,
    /// This request's plans, from its document (shared with the stream
    /// of a subscription).
    plans: Arc<Mutex<Option<Arc<Plans>>>>,
}

/// The plan of the operation `name` of a document.
fn plan_of_operation<'p>(plans: &'p Plans, name: Option<&str>) -> Option<&'p Plan> {
    plans
        .get(&name.map(Name::new))
        .or_else(|| match plans.len() {
            1 => plans.values().next(),
            _ => None,
        })
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a value that is still valid.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl RequestOrder {
    /// Takes (or makes) the plans of the request's document.
    pub(super) fn plan(&self, query: &str, document: &ExecutableDocument) {
        let cached = locked(&self.cache).get(query).cloned();
        let plans = match cached {
            Some(plans) => plans,
            None => {
                let plans = Arc::new(plans_of(document));
                let mut cache = locked(&self.cache);
                if cache.len() >= CAPACITY {
                    cache.clear();
                }
                cache.insert(query.to_owned(), plans.clone());
                plans
            }
        };
        *locked(&self.plans) = Some(plans);
    }

    /// Puts the executed operation's response in the order of its query.
    pub(super) fn reorder(&self, response: &mut Response, operation_name: Option<&str>) {
        let plans = locked(&self.plans).take();
        if let Some(plan) = plans
            .as_deref()
            .and_then(|p| plan_of_operation(p, operation_name))
        {
            reorder(&mut response.data, plan);
        }
    }

    /// Each event of a subscription (its document is parsed once the
    /// stream starts, hence the plan is looked up per event).
    pub(super) fn ordered<'s>(&self, stream: BoxStream<'s, Response>) -> BoxStream<'s, Response> {
        let plans = self.plans.clone();
        let ordered = stream.map(move |mut response| {
            let plans = locked(&plans).clone();
            if let Some(plan) = plans.as_deref().and_then(|p| plan_of_operation(p, None)) {
                reorder(&mut response.data, plan);
            }
            response
        });
        ordered.boxed()
    }
}

fn plans_of(document: &ExecutableDocument) -> Plans {
    let fragments = &document.fragments;
    let mut visits = MAX_VISITS;
    let mut plan_of = |selections| {
        let mut plan = Plan::default();
        add(
            &mut plan,
            selections,
            fragments,
            &mut Vec::new(),
            &mut visits,
        );
        plan
    };
    let plans = match &document.operations {
        DocumentOperations::Single(operation) => {
            HashMap::from([(None, plan_of(&operation.node.selection_set))])
        }
        DocumentOperations::Multiple(operations) => operations
            .iter()
            .map(|(name, operation)| (Some(name.clone()), plan_of(&operation.node.selection_set)))
            .collect(),
    };
    if visits == 0 {
        return Plans::new();
    }
    plans
}

/// Adds a selection set's keys to `plan`. `within` holds the fragments
/// being inlined: the document is not validated yet, and a fragment that
/// spreads itself must not recurse forever.
fn add(
    plan: &mut Plan,
    selections: &Positioned<SelectionSet>,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
    within: &mut Vec<Name>,
    visits: &mut usize,
) {
    for selection in &selections.node.items {
        if *visits == 0 {
            return;
        }
        *visits -= 1;
        match &selection.node {
            Selection::Field(field) => {
                let key = &field.node.response_key().node;
                let index = match plan.keys.iter().position(|k| k == key) {
                    Some(index) => index,
                    None => {
                        plan.keys.push(key.clone());
                        plan.nested.push(None);
                        plan.keys.len() - 1
                    }
                };
                if !field.node.selection_set.node.items.is_empty() {
                    let nested = plan.nested[index].get_or_insert_with(Plan::default);
                    add(nested, &field.node.selection_set, fragments, within, visits);
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if within.contains(name) {
                    continue;
                }
                if let Some(fragment) = fragments.get(name) {
                    within.push(name.clone());
                    add(
                        plan,
                        &fragment.node.selection_set,
                        fragments,
                        within,
                        visits,
                    );
                    within.pop();
                }
            }
            Selection::InlineFragment(inline) => {
                add(plan, &inline.node.selection_set, fragments, within, visits);
            }
        }
    }
}

/// Puts the objects of `value` in the order of `plan`, at every depth.
fn reorder(value: &mut Value, plan: &Plan) {
    match value {
        Value::Object(object) => {
            if !in_order(object.keys(), &plan.keys) {
                let position = |key: &Name| plan.keys.iter().position(|k| same_key(k, key));
                object.sort_by(|a, _, b, _| position(a).cmp(&position(b)));
            }
            // Both in the same order now: one pass pairs each value with
            // its key's plan.
            let mut at = 0;
            for (key, value) in object.iter_mut() {
                while at < plan.keys.len() && !same_key(&plan.keys[at], key) {
                    at += 1;
                }
                match plan.nested.get(at) {
                    Some(Some(nested)) => reorder(value, nested),
                    Some(None) => {}
                    // A key the plan does not know (none should exist).
                    None => return,
                }
            }
        }
        Value::List(items) => {
            for item in items {
                reorder(item, plan);
            }
        }
        _ => {}
    }
}

/// Whether two response keys are the same. A response's keys are the names
/// of the document it answers, shared with the plan made from it rather
/// than copied, so where they point settles almost every comparison
/// (comparing the text of each key of each object was a quarter of this
/// step's instructions).
fn same_key(a: &Name, b: &Name) -> bool {
    std::ptr::eq(a.as_str(), b.as_str()) || a == b
}

/// Whether `keys` appear in the order of `order`.
fn in_order<'a>(keys: impl Iterator<Item = &'a Name>, order: &[Name]) -> bool {
    let mut at = 0;
    for key in keys {
        match order[at..].iter().position(|k| same_key(k, key)) {
            Some(offset) => at += offset,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(query: &str) -> Plan {
        let document = async_graphql::parser::parse_query(query).unwrap();
        plans_of(&document).remove(&None).unwrap()
    }

    fn keys(value: &Value) -> Vec<String> {
        match value {
            Value::Object(object) => object.keys().map(|k| k.to_string()).collect(),
            _ => panic!("an object"),
        }
    }

    #[test]
    fn reorders_every_level_fragments_included() {
        let plan = plan_of(
            "{ a: user { c ...F ... on User { b } } } fragment F on User { d list { y x } }",
        );
        let mut value = Value::from_json(serde_json::json!({
            "a": { "list": [{ "x": 1, "y": 2 }], "b": 1, "c": 2, "d": 3 }
        }))
        .unwrap();
        reorder(&mut value, &plan);
        let Value::Object(root) = &value else {
            unreachable!()
        };
        assert_eq!(keys(&root["a"]), ["c", "d", "list", "b"]);
        let Value::Object(user) = &root["a"] else {
            unreachable!()
        };
        let Value::List(list) = &user["list"] else {
            unreachable!()
        };
        assert_eq!(keys(&list[0]), ["y", "x"]);
    }

    #[test]
    fn fragments_spread_many_times_over_get_no_plan() {
        // Each fragment spreads the next twice: 2^30 selections inlined.
        let mut query = String::from("{ ...F0 }");
        for n in 0..30 {
            query += &format!(" fragment F{n} on Query {{ a ...F{m} ...F{m} }}", m = n + 1);
        }
        query += " fragment F30 on Query { a }";
        let document = async_graphql::parser::parse_query(&query).unwrap();
        assert!(plans_of(&document).is_empty());
    }

    #[test]
    fn a_fragment_that_spreads_itself_ends() {
        let plan = plan_of("{ ...F } fragment F on Query { a ...F }");
        assert_eq!(plan.keys, [Name::new("a")]);
    }
}
