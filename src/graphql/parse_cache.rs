//! Parsed documents remembered by their text. Clients send the same few
//! queries again and again, and parsing one cost about 6% of a read's CPU
//! (docs/BENCHMARKS.md). Registered last, so that every extension that
//! inspects or rewrites a parsed document (`absent_variables`, `limits`)
//! still does so on each request, on its own copy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Variables};

/// Most documents remembered; with the query size limit, this bounds the
/// memory the cache can take. When full, it starts again empty.
const CAPACITY: usize = 256;

/// The extension factory to register on the schema; one cache per schema.
#[derive(Default)]
pub struct ParseCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ParseCacheExtension {
            documents: self.documents.clone(),
        })
    }
}

struct ParseCacheExtension {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ParseCacheExtension {
    fn documents(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.documents
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ParseCacheExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.documents().get(query) {
            return Ok(document.clone());
        }
        // Only documents that parse are remembered.
        let document = next.run(ctx, query, variables).await?;
        let mut documents = self.documents();
        if documents.len() >= CAPACITY {
            documents.clear();
        }
        documents.insert(query.to_owned(), document.clone());
        Ok(document)
    }
}
