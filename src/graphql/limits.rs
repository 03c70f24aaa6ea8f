//! Abuse limits checked on the parsed and validated document, before any
//! resolver runs: depth, cost, aliases and root fields. Each refusal has a
//! stable `extensions.code`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{
    ErrorExtensionValues, Name, Positioned, ServerError, ServerResult, ValidationResult, Variables,
};

use crate::config::Limits;

/// The extension factory to register on the schema.
pub struct QueryLimits {
    pub limits: Arc<Limits>,
    /// Refuse `__schema` and `__type` with a clear error (async-graphql alone
    /// would answer them with a silent null).
    pub disable_introspection: bool,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            limits: self.limits.clone(),
            disable_introspection: self.disable_introspection,
        })
    }
}

struct QueryLimitsExtension {
    limits: Arc<Limits>,
    disable_introspection: bool,
}

/// A refusal of the whole document, with a stable code (and no location:
/// it is about no one place in the query).
pub fn refusal(code: &'static str, message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let limits = &self.limits;
        let aliases = count_aliases(&document);
        if aliases > limits.max_aliases {
            return Err(refusal(
                "ALIAS_LIMIT_EXCEEDED",
                format!(
                    "the query uses {aliases} aliases; at most {} are allowed",
                    limits.max_aliases
                ),
            ));
        }
        for (_, operation) in document.operations.iter() {
            let selection = &operation.node.selection_set.node;
            if self.disable_introspection && selects_introspection(selection, &document.fragments) {
                return Err(refusal(
                    "INTROSPECTION_DISABLED",
                    "introspection is disabled on this server".to_owned(),
                ));
            }
            let roots = count_root_fields(selection, &document.fragments);
            if roots > limits.max_root_fields {
                return Err(refusal(
                    "ROOT_FIELD_LIMIT_EXCEEDED",
                    format!(
                        "the operation selects {roots} root fields; at most {} are allowed",
                        limits.max_root_fields
                    ),
                ));
            }
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let limits = &self.limits;
        if result.depth > limits.max_depth {
            return Err(vec![refusal(
                "DEPTH_LIMIT_EXCEEDED",
                format!(
                    "the query nests {} levels deep; at most {} are allowed",
                    result.depth, limits.max_depth
                ),
            )]);
        }
        if result.complexity > limits.max_complexity {
            return Err(vec![refusal(
                "COMPLEXITY_LIMIT_EXCEEDED",
                format!(
                    "the query costs {}; at most {} is allowed (one per field, list fields times their page size)",
                    result.complexity, limits.max_complexity
                ),
            )]);
        }
        Ok(result)
    }
}

fn count_aliases(document: &ExecutableDocument) -> usize {
    fn in_set(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + in_set(&field.node.selection_set.node)
                }
                Selection::InlineFragment(inline) => in_set(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = document
        .operations
        .iter()
        .map(|(_, operation)| in_set(&operation.node.selection_set.node))
        .sum();
    let fragments: usize = document
        .fragments
        .values()
        .map(|fragment| in_set(&fragment.node.selection_set.node))
        .sum();
    operations + fragments
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The names of the fields at the root, through fragments (each fragment
/// once, so a cycle, which validation refuses anyway, cannot loop).
fn root_field_names<'a>(set: &'a SelectionSet, fragments: &'a Fragments) -> Vec<&'a Name> {
    fn walk<'a>(
        set: &'a SelectionSet,
        fragments: &'a Fragments,
        seen: &mut Vec<&'a Name>,
        out: &mut Vec<&'a Name>,
    ) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => out.push(&field.node.name.node),
                Selection::InlineFragment(inline) => {
                    walk(&inline.node.selection_set.node, fragments, seen, out)
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if let Some(fragment) = fragments.get(name) {
                        if !seen.contains(&name) {
                            seen.push(name);
                            walk(&fragment.node.selection_set.node, fragments, seen, out);
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(set, fragments, &mut Vec::new(), &mut out);
    out
}

fn count_root_fields(set: &SelectionSet, fragments: &Fragments) -> usize {
    root_field_names(set, fragments).len()
}

fn selects_introspection(set: &SelectionSet, fragments: &Fragments) -> bool {
    root_field_names(set, fragments)
        .iter()
        .any(|name| name.as_str() == "__schema" || name.as_str() == "__type")
}
