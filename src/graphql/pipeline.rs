//! The schema's one async-graphql extension: every step usergraph adds to
//! a request's parsing, validation and execution, in their order.
//!
//! One extension, not one per step: async-graphql wraps the resolution of
//! every field in every registered extension, whether or not it hooks
//! field resolution (a boxed future per extension and field, after a
//! lookup of the field in the registry). With the six steps registered
//! apart, that took nearly a fifth of a W1 read's instructions
//! (docs/BENCHMARKS.md, "One extension, and the request task boxed").

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Variables};
use futures_util::stream::BoxStream;

use super::limits::QueryLimits;
use super::parse_cache::{ParseCache, RequestCache};
use super::response_order::{RequestOrder, ResponseOrder};
use super::schema_description::SchemaDescription;
use super::{absent_variables, error_codes};

/// The extension factory to register on the schema.
pub(super) struct Pipeline {
    limits: Arc<QueryLimits>,
    parse_cache: ParseCache,
    response_order: ResponseOrder,
}

impl Pipeline {
    pub(super) fn new(limits: QueryLimits) -> Self {
        Pipeline {
            limits: Arc::new(limits),
            parse_cache: ParseCache::default(),
            response_order: ResponseOrder::default(),
        }
    }
}

impl ExtensionFactory for Pipeline {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestPipeline {
            limits: self.limits.clone(),
            parse_cache: self.parse_cache.for_request(),
            response_order: self.response_order.for_request(),
            schema_description: SchemaDescription::default(),
            operation_name: Mutex::default(),
        })
    }
}

/// One request's pass through the steps (async-graphql creates an
/// extension per request).
struct RequestPipeline {
    limits: Arc<QueryLimits>,
    parse_cache: RequestCache,
    response_order: RequestOrder,
    schema_description: SchemaDescription,
    /// The request's `operationName`, seen before parsing.
    operation_name: Mutex<Option<String>>,
}

impl RequestPipeline {
    fn operation_name(&self) -> Option<String> {
        self.operation_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestPipeline {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        self.operation_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone_from(&request.operation_name);
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let parsed = async {
            let operation_name = self.operation_name();
            // The text's nesting is checked before it is parsed, so only
            // when it is: a text in the cache passed the check then.
            let parse = async {
                self.limits.check_text(query)?;
                next.run(ctx, query, variables).await
            };
            let mut document = self
                .parse_cache
                .document(
                    &ctx.schema_env.registry,
                    query,
                    operation_name.clone(),
                    variables,
                    parse,
                )
                .await?;
            self.response_order.plan(query, &document);
            self.schema_description.find(&document);
            self.limits.check_document(&document)?;
            // On this request's own copy, after the plans and the cache's
            // key were taken from the document as sent.
            absent_variables::drop_absent_variables(
                &mut document,
                operation_name.as_deref(),
                variables,
            );
            Ok(document)
        };
        parsed.await.map_err(error_codes::parse_error)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        self.parse_cache
            .validation(next.run(ctx))
            .await
            .and_then(|result| self.limits.check_validation(result))
            .map_err(error_codes::validation_errors)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        self.response_order.reorder(&mut response, operation_name);
        self.schema_description.fill(&mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, self.response_order.ordered(stream))
    }
}
