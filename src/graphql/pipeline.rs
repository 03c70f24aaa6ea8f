//! The schema's one async-graphql extension: every step usergraph adds to
//! a request's parsing, validation and execution, in their order.
//!
//! One extension, not one per step: async-graphql wraps the resolution of
//! every field in every registered extension, whether or not it hooks
//! field resolution (a boxed future per extension and field, after a
//! lookup of the field in the registry). With the six steps registered
//! apart, that took nearly a fifth of a W1 read's instructions
//! (docs/BENCHMARKS.md, "One extension, and the request task boxed").
//! A request the pipeline has already seen through, whole, takes the same
//! steps outside the schema ([`Pipeline::known`]) and runs on a copy of
//! the schema with no extension at all (`graphql::Service`).

use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Request, Response, SchemaEnv, ServerError, ServerResult, ValidationResult, Variables,
};
use futures_util::stream::BoxStream;

use super::limits::QueryLimits;
use super::parse_cache::{ParseCache, RequestCache};
use super::response_order::{RequestOrder, ResponseOrder};
use super::schema_description::SchemaDescription;
use super::{absent_variables, error_codes};

/// The extension factory to register on the schema; its clones share the
/// caches.
#[derive(Clone)]
pub(super) struct Pipeline {
    limits: Arc<QueryLimits>,
    parse_cache: ParseCache,
    response_order: ResponseOrder,
    /// The schema's registry, kept from its first request, for
    /// [`Pipeline::known`] (which runs outside the schema).
    schema_env: Arc<OnceLock<SchemaEnv>>,
}

impl Pipeline {
    pub(super) fn new(limits: QueryLimits) -> Self {
        Pipeline {
            limits: Arc::new(limits),
            parse_cache: ParseCache::default(),
            response_order: ResponseOrder::default(),
            schema_env: Arc::default(),
        }
    }

    fn for_request(&self) -> RequestPipeline {
        RequestPipeline {
            limits: self.limits.clone(),
            parse_cache: self.parse_cache.for_request(),
            response_order: self.response_order.for_request(),
            schema_description: SchemaDescription::default(),
            operation_name: Mutex::default(),
            schema_env: self.schema_env.clone(),
        }
    }

    /// A request this pipeline has already seen through, whole: its text
    /// parsed, its validation (with variables of the same kinds, see
    /// `parse_cache`) remembered and within the limits. Returns the
    /// request's own document, through every step the extension would take
    /// (so the request can run on a schema without it, `graphql::Service`),
    /// and the step left for its response, [`KnownRequest::finish`]. `None`
    /// for anything else, which goes through the extension.
    pub(super) fn known(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Option<(KnownRequest, ExecutableDocument)> {
        let registry = &self.schema_env.get()?.registry;
        let (document, validation) = self.parse_cache.known(
            registry,
            query,
            operation_name.map(str::to_owned),
            variables,
        )?;
        self.limits.check_validation(validation).ok()?;
        // The request's own state, only for a request that takes this way.
        let request = self.for_request();
        let document = request
            .prepare(query, operation_name, variables, document)
            .ok()?;
        Some((KnownRequest(request), document))
    }
}

impl ExtensionFactory for Pipeline {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.for_request())
    }
}

/// A request [`Pipeline::known`] readied, running without the extension.
pub(super) struct KnownRequest(RequestPipeline);

impl KnownRequest {
    /// The extension's last step, on the request's response.
    pub(super) fn finish(&self, response: &mut Response, operation_name: Option<&str>) {
        self.0.finish(response, operation_name);
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
    schema_env: Arc<OnceLock<SchemaEnv>>,
}

impl RequestPipeline {
    fn operation_name(&self) -> Option<String> {
        self.operation_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The steps on a parsed `document` (the cache's, or just parsed): its
    /// response plan, what it asks of the schema's description, its limits,
    /// and, on this request's own copy after the plans and the cache's key
    /// were taken from the document as sent, the variables left out.
    fn prepare(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &Variables,
        mut document: ExecutableDocument,
    ) -> ServerResult<ExecutableDocument> {
        self.response_order.plan(query, &document);
        self.schema_description.find(&document);
        self.limits.check_document(&document)?;
        absent_variables::drop_absent_variables(&mut document, operation_name, variables);
        Ok(document)
    }

    /// The step on a response: fields in query order, the schema's
    /// description where asked for.
    fn finish(&self, response: &mut Response, operation_name: Option<&str>) {
        self.response_order.reorder(response, operation_name);
        self.schema_description.fill(response);
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
        self.schema_env.get_or_init(|| ctx.schema_env.clone());
        let parsed = async {
            let operation_name = self.operation_name();
            // The text's nesting is checked before it is parsed, so only
            // when it is: a text in the cache passed the check then.
            let parse = async {
                self.limits.check_text(query)?;
                next.run(ctx, query, variables).await
            };
            let document = self
                .parse_cache
                .document(
                    &ctx.schema_env.registry,
                    query,
                    operation_name.clone(),
                    variables,
                    parse,
                )
                .await?;
            self.prepare(query, operation_name.as_deref(), variables, document)
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
        self.finish(&mut response, operation_name);
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
