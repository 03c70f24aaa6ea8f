//! Parsed documents remembered by their text, and the validations of the
//! requests whose outcome cannot depend on their variables' values.
//! Clients send the same few queries again and again: parsing one cost
//! about 6% of a read's CPU, validating it about 10% (docs/BENCHMARKS.md).
//! The innermost step of the request pipeline (`pipeline`), so that every
//! step that inspects or rewrites a parsed document (`absent_variables`,
//! `limits`) still does so on each request, on its own copy, and `limits`
//! still checks the depth and cost of every request against its own limits.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::parser::types::{BaseType, DocumentOperations, ExecutableDocument};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{ServerError, ServerResult, ValidationResult, Value, Variables};

/// Most documents, and most validations, remembered; with the query size
/// limit, this bounds the memory the cache can take. When full, it starts
/// again empty.
const CAPACITY: usize = 256;

/// What a validation's outcome can depend on, for a request whose
/// variables qualify (see [`validation_key`]): the text, the operation
/// chosen, and which variables are given (`absent_variables` rewrites the
/// document by that, and defaults fill the rest).
#[derive(PartialEq, Eq, Hash)]
struct ValidationKey {
    query: String,
    operation_name: Option<String>,
    variables: Vec<String>,
}

/// The cache; one per schema, its clones share it.
#[derive(Default, Clone)]
pub(super) struct ParseCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
    validations: Arc<Mutex<HashMap<ValidationKey, ValidationResult>>>,
}

impl ParseCache {
    /// One request's view of the cache.
    pub(super) fn for_request(&self) -> RequestCache {
        RequestCache {
            documents: self.documents.clone(),
            validations: self.validations.clone(),
            validation_key: Mutex::default(),
        }
    }

    /// The document of `query` and its remembered validation, when both
    /// are remembered for a request of operation `operation_name` with
    /// `variables` (see [`validation_key`]); `None` otherwise.
    pub(super) fn known(
        &self,
        registry: &Registry,
        query: &str,
        operation_name: Option<String>,
        variables: &Variables,
    ) -> Option<(ExecutableDocument, ValidationResult)> {
        let documents = lock(&self.documents);
        let document = documents.get(query)?;
        let key = validation_key(registry, document, query, operation_name, variables)?;
        // The one place both locks are held, always in this order; the
        // document is copied only for a request that will use it.
        let validation = *lock(&self.validations).get(&key)?;
        Some((document.clone(), validation))
    }
}

/// One request's view of the cache.
pub(super) struct RequestCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
    validations: Arc<Mutex<HashMap<ValidationKey, ValidationResult>>>,
    /// Set when the request's validation may be remembered or recalled.
    validation_key: Mutex<Option<ValidationKey>>,
}

/// Locks `mutex`; a panic while holding it leaves a map that is still
/// valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Remembers `value` under `key` in `map`, emptied first when full.
fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut map = lock(map);
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, value);
}

/// The key a validation of `query` with `variables` is remembered under,
/// or `None` when its outcome could depend on their values.
///
/// async-graphql's validation reads variable values in two places: it
/// checks each against the type of the argument it is passed to, and a
/// field's cost may read an argument (`first`). Here every given variable
/// must be a string declared `ID` or `String`, a boolean declared
/// `Boolean`, or a value a custom scalar (such as `DateTime`) accepts:
/// any such value passes the check, whatever its content (for a custom
/// scalar the check is the scalar's own, asked here instead; a variable
/// can only be passed where its type is expected), and no cost reads
/// those types. Anything else (a number, a value a custom scalar refuses,
/// an input object, a list, a null, several operations) is validated on
/// every request. The update's `expectedUpdatedAt` is a `DateTime`: its
/// validation was a sixth of a W2 pair's instructions.
fn validation_key(
    registry: &Registry,
    document: &ExecutableDocument,
    query: &str,
    operation_name: Option<String>,
    variables: &Variables,
) -> Option<ValidationKey> {
    let DocumentOperations::Single(operation) = &document.operations else {
        return None;
    };
    let definitions = &operation.node.variable_definitions;
    let mut given = Vec::with_capacity(variables.len());
    for (name, value) in variables.iter() {
        // A name declared twice fails validation, which is not remembered.
        let definition = definitions
            .iter()
            .find(|definition| definition.node.name.node == *name)?;
        let BaseType::Named(type_name) = &definition.node.var_type.node.base else {
            return None;
        };
        let any_content = match (type_name.as_str(), value) {
            ("ID" | "String", Value::String(_)) | ("Boolean", Value::Boolean(_)) => true,
            (_, Value::Null) | ("Int" | "Float" | "ID" | "String" | "Boolean", _) => false,
            (custom, value) => match registry.types.get(custom) {
                Some(MetaType::Scalar { is_valid, .. }) => {
                    is_valid.as_ref().is_none_or(|accepts| accepts(value))
                }
                _ => false,
            },
        };
        if !any_content {
            return None;
        }
        given.push(name.to_string());
    }
    given.sort_unstable();
    Some(ValidationKey {
        query: query.to_owned(),
        operation_name,
        variables: given,
    })
}

impl RequestCache {
    /// The document of `query`, remembered or from `parse`; notes whether
    /// the request's validation (of operation `operation_name` with
    /// `variables`) may be remembered.
    pub(super) async fn document(
        &self,
        registry: &Registry,
        query: &str,
        operation_name: Option<String>,
        variables: &Variables,
        parse: impl Future<Output = ServerResult<ExecutableDocument>>,
    ) -> ServerResult<ExecutableDocument> {
        let cached = lock(&self.documents).get(query).cloned();
        let document = match cached {
            Some(document) => document,
            // Only documents that parse are remembered.
            None => {
                let document = parse.await?;
                remember(&self.documents, query.to_owned(), document.clone());
                document
            }
        };
        *lock(&self.validation_key) =
            validation_key(registry, &document, query, operation_name, variables);
        Ok(document)
    }

    /// The request's validation, remembered or from `validate`.
    pub(super) async fn validation(
        &self,
        validate: impl Future<Output = Result<ValidationResult, Vec<ServerError>>>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let Some(key) = lock(&self.validation_key).take() else {
            return validate.await;
        };
        if let Some(result) = lock(&self.validations).get(&key) {
            return Ok(*result);
        }
        // Only validations that pass are remembered.
        let result = validate.await?;
        remember(&self.validations, key, result);
        Ok(result)
    }
}
