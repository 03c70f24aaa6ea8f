//! Makes a declared but unprovided variable mean "absent", as the GraphQL
//! spec's input coercion says, instead of async-graphql's "not defined" error.
//!
//! `updateUser(input: { email: $email })` with `$email` declared and not sent
//! must leave `email` alone, not fail and not clear it. After parsing, every
//! argument or input-object field bound to such a variable is dropped (a list
//! item becomes `null`), and so is the variable's now unused definition.
//! Non-null variables are left alone so the missing value is still reported.
//! Only the operation to run is rewritten: another operation of the same
//! document may declare the same variable differently.

use std::collections::HashSet;

use async_graphql::parser::types::DocumentOperations;
use async_graphql::parser::types::OperationDefinition;
use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Variables};
use async_graphql_value::Value;

/// The operation a request runs: the named one, or the only one.
fn operation_to_run<'a>(
    document: &'a mut ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a mut OperationDefinition> {
    let operation = match (&mut document.operations, name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get_mut(name)?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values_mut().next()?
        }
        // Ambiguous: async-graphql reports that; there is nothing to rewrite.
        (DocumentOperations::Multiple(_), None) => return None,
    };
    Some(&mut operation.node)
}

/// Rewrites the operation `name` of `document` (the only one when `None`)
/// as if every nullable variable it declares without a default and that
/// `variables` lacks were not there.
pub(super) fn drop_absent_variables(
    document: &mut ExecutableDocument,
    name: Option<&str>,
    variables: &Variables,
) {
    let Some(operation) = operation_to_run(document, name) else {
        return;
    };
    let absent: HashSet<Name> = operation
        .variable_definitions
        .iter()
        .map(|definition| &definition.node)
        .filter(|definition| {
            definition.var_type.node.nullable
                && definition.default_value.is_none()
                && !variables.contains_key(&definition.name.node)
        })
        .map(|definition| definition.name.node.clone())
        .collect();
    if absent.is_empty() {
        return;
    }
    operation
        .variable_definitions
        .retain(|definition| !absent.contains(&definition.node.name.node));
    drop_in_directives(&mut operation.directives, &absent);
    drop_in_selection_set(&mut operation.selection_set.node, &absent);
    // Fragments are shared; another operation using them is not run.
    for fragment in document.fragments.values_mut() {
        drop_in_directives(&mut fragment.node.directives, &absent);
        drop_in_selection_set(&mut fragment.node.selection_set.node, &absent);
    }
}

fn drop_in_selection_set(set: &mut SelectionSet, absent: &HashSet<Name>) {
    for selection in &mut set.items {
        match &mut selection.node {
            Selection::Field(field) => {
                let field = &mut field.node;
                drop_in_arguments(&mut field.arguments, absent);
                drop_in_directives(&mut field.directives, absent);
                drop_in_selection_set(&mut field.selection_set.node, absent);
            }
            Selection::FragmentSpread(spread) => {
                drop_in_directives(&mut spread.node.directives, absent);
            }
            Selection::InlineFragment(inline) => {
                drop_in_directives(&mut inline.node.directives, absent);
                drop_in_selection_set(&mut inline.node.selection_set.node, absent);
            }
        }
    }
}

fn drop_in_directives(directives: &mut [Positioned<Directive>], absent: &HashSet<Name>) {
    for directive in directives {
        drop_in_arguments(&mut directive.node.arguments, absent);
    }
}

fn drop_in_arguments(
    arguments: &mut Vec<(Positioned<Name>, Positioned<Value>)>,
    absent: &HashSet<Name>,
) {
    arguments.retain(|(_, value)| !is_absent(&value.node, absent));
    for (_, value) in arguments {
        drop_in_value(&mut value.node, absent);
    }
}

fn drop_in_value(value: &mut Value, absent: &HashSet<Name>) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, field| !is_absent(field, absent));
            for field in fields.values_mut() {
                drop_in_value(field, absent);
            }
        }
        Value::List(items) => {
            for item in items {
                if is_absent(item, absent) {
                    *item = Value::Null;
                } else {
                    drop_in_value(item, absent);
                }
            }
        }
        _ => {}
    }
}

fn is_absent(value: &Value, absent: &HashSet<Name>) -> bool {
    matches!(value, Value::Variable(name) if absent.contains(name))
}
