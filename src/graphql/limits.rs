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
    ErrorExtensions, Name, Positioned, ServerError, ServerResult, ValidationResult, Variables,
};

use crate::config::Limits;

/// The extension factory to register on the schema.
pub struct QueryLimits(pub Arc<Limits>);

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension(self.0.clone()))
    }
}

struct QueryLimitsExtension(Arc<Limits>);

/// A refusal with a stable code.
pub fn refusal(code: &'static str, message: String) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, e| e.set("code", code))
        .into_server_error(Default::default())
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
        let limits = &self.0;
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
            let roots = count_root_fields(&operation.node.selection_set.node, &document.fragments);
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
        let limits = &self.0;
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

/// Fields at the root, counting through fragments (each fragment once, so
/// a cycle, which validation refuses anyway, cannot loop).
fn count_root_fields(
    set: &SelectionSet,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
) -> usize {
    fn walk(
        set: &SelectionSet,
        fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
        seen: &mut Vec<Name>,
    ) -> usize {
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(inline) => {
                    walk(&inline.node.selection_set.node, fragments, seen)
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    match fragments.get(name) {
                        Some(fragment) if !seen.contains(name) => {
                            seen.push(name.clone());
                            walk(&fragment.node.selection_set.node, fragments, seen)
                        }
                        _ => 0,
                    }
                }
            })
            .sum()
    }
    walk(set, fragments, &mut Vec::new())
}
