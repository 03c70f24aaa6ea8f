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

use async_graphql::{Request, Response, Schema, SchemaBuilder};

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
pub fn build_schema(repo: Repo, options: &SchemaOptions) -> Service {
    let pipeline = pipeline::Pipeline::new(limits::QueryLimits {
        limits: Arc::new(options.limits.clone()),
        disable_introspection: options.disable_introspection,
    });
    let finish = |builder: SchemaBuilder<_, _, _>| {
        let builder = builder.data(repo.clone());
        if options.disable_introspection {
            builder.disable_introspection().finish()
        } else {
            builder.finish()
        }
    };
    Service {
        schema: finish(builder().extension(pipeline.clone())),
        known_schema: finish(builder().validation_mode(async_graphql::ValidationMode::Fast)),
        pipeline,
    }
}

/// The schema, and a copy of it for the requests its pipeline has already
/// seen through (`pipeline::Pipeline::known`).
///
/// async-graphql wraps the resolution of every field in the schema's
/// extensions, if it has any, whether or not they hook it: a registry
/// lookup of the field, hashed with SipHash, and a boxed future per field.
/// The copy has no extension: a request whose text, validation and limits
/// the pipeline remembers is readied by the pipeline itself (its own
/// document, through every step the extension takes) and runs there; the
/// copy's validation is async-graphql's `Fast` one, which checks no rule a
/// remembered validation has not passed, but still visits the document. A
/// W1 read takes 7% fewer instructions, a W2 pair 7% (docs/BENCHMARKS.md,
/// "Known requests without the extension"). Any other request, and every
/// subscription, runs on the schema with the extension.
#[derive(Clone)]
pub struct Service {
    schema: AppSchema,
    known_schema: AppSchema,
    pipeline: pipeline::Pipeline,
}

impl Service {
    /// The schema with its pipeline, for subscriptions.
    pub fn schema(&self) -> &AppSchema {
        &self.schema
    }

    /// Runs `request`.
    pub async fn execute(&self, mut request: Request) -> Response {
        let known = self.pipeline.known(
            &request.query,
            request.operation_name.as_deref(),
            &request.variables,
        );
        let Some((known, document)) = known else {
            return self.schema.execute(request).await;
        };
        // Kept for the response's step, as the request moves into the schema.
        let operation_name = request.operation_name.clone();
        request.set_parsed_query(document);
        let mut response = self.known_schema.execute(request).await;
        known.finish(&mut response, operation_name.as_deref());
        response
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
