//! The GraphQL schema: roots, object types, inputs, scalars, loaders, errors.
//! Resolvers are thin: rules live in `domain`, SQL in `repo`.

mod absent_variables;
mod enums;
pub mod errors;
mod inputs;
pub mod limits;
pub mod loaders;
mod mutation;
mod parse_cache;
mod query;
mod scalars;
mod types;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};

pub use mutation::MutationRoot;
pub use query::QueryRoot;

use std::sync::Arc;

use crate::config::Limits;
use crate::repo::Repo;

/// The executable schema.
pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .extension(absent_variables::AbsentVariables)
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
        .extension(limits::QueryLimits {
            limits: Arc::new(options.limits.clone()),
            disable_introspection: options.disable_introspection,
        })
        .extension(parse_cache::ParseCache::default())
        .data(repo);
    if options.disable_introspection {
        builder.disable_introspection().finish()
    } else {
        builder.finish()
    }
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    let options = async_graphql::SDLExportOptions::new().include_specified_by();
    builder().finish().sdl_with_options(options)
}
