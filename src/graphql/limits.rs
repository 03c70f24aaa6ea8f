//! Abuse limits checked on the parsed and validated document, before any
//! resolver runs: depth, cost, aliases and root fields. Each refusal has a
//! stable `extensions.code`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{
    ErrorExtensionValues, Name, Positioned, ServerError, ServerResult, ValidationResult,
};

use crate::config::Limits;

/// The limits a schema checks every request against.
pub struct QueryLimits {
    pub limits: Arc<Limits>,
    /// Refuse `__schema` and `__type` with a clear error (async-graphql alone
    /// would answer them with a silent null).
    pub disable_introspection: bool,
}

/// Braces, brackets and parentheses a document may nest, counted on its
/// text before it is parsed: the parser and the validation after it recurse
/// once per level, and 10 KB of `[[[[…` overflowed a worker thread's stack,
/// which aborts the whole process (`tests/fuzz_rules.rs` found it). Far
/// above any real query: selections nest at most `--max-depth` (16).
pub const MAX_NESTING: usize = 64;

/// How deep `query` nests braces, brackets and parentheses, outside
/// strings, block strings and comments; stops counting past
/// [`MAX_NESTING`].
pub fn nesting(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while at < bytes.len() && deepest <= MAX_NESTING {
        match bytes[at] {
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            // A comment runs to the end of the line.
            b'#' => {
                while at < bytes.len() && !matches!(bytes[at], b'\n' | b'\r') {
                    at += 1;
                }
            }
            // A block string runs to the next `"""` not escaped as `\"""`.
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at += 3;
                while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                    at += if bytes[at..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                at += 2;
            }
            // A string runs to the next `"` not escaped, or to the line's end.
            b'"' => {
                at += 1;
                while at < bytes.len() && !matches!(bytes[at], b'"' | b'\n' | b'\r') {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        at += 1;
    }
    deepest
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

impl QueryLimits {
    /// Refuses a query text nested too deep to parse safely.
    pub(super) fn check_text(&self, query: &str) -> ServerResult<()> {
        if nesting(query) > MAX_NESTING {
            return Err(refusal(
                "DEPTH_LIMIT_EXCEEDED",
                format!(
                    "the query nests braces, brackets or parentheses more than {MAX_NESTING} deep"
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a parsed document with too many aliases or root fields, or
    /// one that introspects where introspection is disabled.
    pub(super) fn check_document(&self, document: &ExecutableDocument) -> ServerResult<()> {
        let limits = &self.limits;
        let aliases = count_aliases(document);
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
        Ok(())
    }

    /// Refuses a validated document too deep or too costly.
    pub(super) fn check_validation(
        &self,
        result: ValidationResult,
    ) -> Result<ValidationResult, Vec<ServerError>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_outside_strings_and_comments() {
        assert_eq!(nesting("{ a { b(c: [[1]]) } }"), 5);
        assert_eq!(nesting("{ a(s: \"[[[[\\\"[[\") }"), 2);
        assert_eq!(nesting("{ a # [[[[\n b }"), 1);
        assert_eq!(nesting("{ a(s: \"\"\" [[ \\\"\"\" \" [[ \"\"\") }"), 2);
        // A lone quote inside a block string does not hide what follows it.
        assert_eq!(nesting("{ a(s: \"\"\" \" \"\"\", t: [[[1]]]) }"), 5);
        let deep = format!("{{ a(b: {}1{}) }}", "[".repeat(500), "]".repeat(500));
        assert!(nesting(&deep) > MAX_NESTING);
    }
}
