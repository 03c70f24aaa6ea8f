//! The schema's own description in introspection. async-graphql answers
//! `__schema { description }` with the text describing the `__Schema`
//! meta-type itself ("A GraphQL Schema defines the capabilities of…"),
//! which GraphiQL then shows as this API's description. This step of the
//! request pipeline (`pipeline`) answers usergraph's own instead: it finds,
//! in each document, where `__schema { description }` is selected (aliases
//! and fragments included) and sets that value after execution. Documents that do not introspect,
//! nearly all, cost one walk of their root selection.

use std::sync::Mutex;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Response, Value};

/// What `__schema { description }` answers.
pub const DESCRIPTION: &str = "usergraph: user records with their wallets, sessions, MFA devices \
    and other linked records. `updateUser` applies a partial update only if the user is still \
    at the version the client read (compare-and-set on `updatedAt`); subscriptions push \
    every committed change.";

/// One request's places of `__schema { description }`.
#[derive(Default)]
pub(super) struct SchemaDescription {
    /// Response keys of `__schema` and of its `description` field.
    selected: Mutex<Vec<(Name, Name)>>,
}

impl SchemaDescription {
    /// Notes where `document` selects the description.
    pub(super) fn find(&self, document: &ExecutableDocument) {
        let mut selected = Vec::new();
        for (_, operation) in document.operations.iter() {
            for schema in fields_named(&operation.node.selection_set, document, "__schema") {
                for description in fields_named(&schema.selection_set, document, "description") {
                    selected.push((
                        schema.response_key().node.clone(),
                        description.response_key().node.clone(),
                    ));
                }
            }
        }
        *self.selected.lock().unwrap_or_else(|p| p.into_inner()) = selected;
    }

    /// Sets the description where the executed document selected it.
    pub(super) fn fill(&self, response: &mut Response) {
        let selected =
            std::mem::take(&mut *self.selected.lock().unwrap_or_else(|p| p.into_inner()));
        if let Value::Object(data) = &mut response.data {
            for (schema, description) in selected {
                if let Some(Value::Object(schema)) = data.get_mut(&schema) {
                    if let Some(value) = schema.get_mut(&description) {
                        *value = Value::String(DESCRIPTION.to_owned());
                    }
                }
            }
        }
    }
}

/// The fields named `name` of a selection set, through its fragments (at
/// most a few levels and a bounded number of selections: the document is
/// not validated yet, and its fragments may spread themselves or each other
/// many times over).
fn fields_named<'d>(
    selections: &'d Positioned<SelectionSet>,
    document: &'d ExecutableDocument,
    name: &str,
) -> Vec<&'d async_graphql::parser::types::Field> {
    fn walk<'d>(
        selections: &'d Positioned<SelectionSet>,
        document: &'d ExecutableDocument,
        name: &str,
        depth: usize,
        visits: &mut usize,
        found: &mut Vec<&'d async_graphql::parser::types::Field>,
    ) {
        if depth > 8 {
            return;
        }
        for selection in &selections.node.items {
            if *visits == 0 {
                return;
            }
            *visits -= 1;
            match &selection.node {
                Selection::Field(field) if field.node.name.node == name => found.push(&field.node),
                Selection::Field(_) => {}
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        walk(
                            &fragment.node.selection_set,
                            document,
                            name,
                            depth + 1,
                            visits,
                            found,
                        );
                    }
                }
                Selection::InlineFragment(inline) => {
                    walk(
                        &inline.node.selection_set,
                        document,
                        name,
                        depth + 1,
                        visits,
                        found,
                    );
                }
            }
        }
    }
    let mut found = Vec::new();
    let mut visits = 10_000;
    walk(selections, document, name, 0, &mut visits, &mut found);
    found
}
