//! Makes a declared but unprovided variable mean "absent", as the GraphQL
//! spec's input coercion says, instead of async-graphql's "not defined" error.
//!
//! `updateUser(input: { email: $email })` with `$email` declared and not sent
//! must leave `email` alone, not fail and not clear it. After parsing, every
//! argument or input-object field bound to such a variable is dropped (a list
//! item becomes `null`), and so is the variable's now unused definition.
//! Non-null variables are left alone so the missing value is still reported.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::DocumentOperations;
use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, ServerResult, Variables};
use async_graphql_value::Value;

/// The extension factory to register on the schema.
pub struct AbsentVariables;

impl ExtensionFactory for AbsentVariables {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AbsentVariablesExtension)
    }
}

struct AbsentVariablesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for AbsentVariablesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let mut document = next.run(ctx, query, variables).await?;
        drop_absent_variables(&mut document, variables);
        Ok(document)
    }
}

fn drop_absent_variables(document: &mut ExecutableDocument, variables: &Variables) {
    let mut absent = HashSet::new();
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            let definition = &definition.node;
            if definition.var_type.node.nullable
                && definition.default_value.is_none()
                && !variables.contains_key(&definition.name.node)
            {
                absent.insert(definition.name.node.clone());
            }
        }
    }
    if absent.is_empty() {
        return;
    }
    let operations: Vec<_> = match &mut document.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values_mut().collect(),
    };
    for operation in operations {
        let operation = &mut operation.node;
        operation
            .variable_definitions
            .retain(|definition| !absent.contains(&definition.node.name.node));
        drop_in_directives(&mut operation.directives, &absent);
        drop_in_selection_set(&mut operation.selection_set.node, &absent);
    }
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
