//! The GraphQL schema: roots, object types, inputs, scalars, loaders, errors.
//! Resolvers are thin: rules live in `domain`, SQL in `repo`.

mod absent_variables;
mod enums;
mod error_codes;
pub mod errors;
mod history;
mod inputs;
pub mod limits;
pub mod loaders;
mod mutation;
mod outcome;
mod parse_cache;
mod pipeline;
mod query;
mod response_order;
mod scalars;
mod schema_description;
mod subscription;
mod types;

use async_graphql::{Schema, SchemaBuilder};

pub use mutation::MutationRoot;
pub use outcome::{Outcome, OutcomeSlot};
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use std::sync::Arc;

use crate::config::Limits;
use crate::repo::Repo;

/// The executable schema.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
}

/// How the served schema behaves beyond its types.
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    pub limits: Limits,
    /// Refuse introspection queries.
    pub disable_introspection: bool,
}

/// The schema serving requests against `repo`.
pub fn build_schema(repo: Repo, options: &SchemaOptions) -> AppSchema {
    let builder = builder()
        .extension(pipeline::Pipeline::new(limits::QueryLimits {
            limits: Arc::new(options.limits.clone()),
            disable_introspection: options.disable_introspection,
        }))
        .data(repo);
    if options.disable_introspection {
        builder.disable_introspection().finish()
    } else {
        builder.finish()
    }
}

/// Why `value` cannot be the `UpdateUserInput` field `field`, by GraphQL's
/// own input coercion. REST checks a body one field at a time with it, so
/// that every bad field is reported and not only the first.
pub fn update_input_field_error(field: &str, value: serde_json::Value) -> Option<String> {
    use async_graphql::InputType;
    let value = async_graphql::Value::from_json(value).ok()?;
    let object = [(async_graphql::Name::new(field), value)]
        .into_iter()
        .collect();
    let input = async_graphql::Value::Object(object);
    let error = inputs::UpdateUserInput::parse(Some(input)).err()?;
    let message = error.into_server_error(Default::default()).message;
    // The note on the enclosing input type adds nothing for a REST client.
    Some(match message.find(" (occurred while parsing") {
        Some(end) => message[..end].to_owned(),
        None => message,
    })
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    let options = async_graphql::SDLExportOptions::new().include_specified_by();
    builder().finish().sdl_with_options(options)
}
