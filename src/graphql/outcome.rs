//! What a request's operation did, for `/metrics`: the resolvers of the
//! typed results leave it in a slot the HTTP layer puts in the request.

use std::sync::{Arc, Mutex};

use async_graphql::Context;

/// The outcome of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Conflict,
    ValidationFailed,
    NotFound,
    Error,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Conflict => "conflict",
            Outcome::ValidationFailed => "validation_failed",
            Outcome::NotFound => "not_found",
            Outcome::Error => "error",
        }
    }
}

/// Where a request's resolvers leave its outcome; the last one set wins.
/// A clone goes into the request, the HTTP layer reads the original.
#[derive(Debug, Default, Clone)]
pub struct OutcomeSlot(Arc<Mutex<Option<Outcome>>>);

impl OutcomeSlot {
    pub fn get(&self) -> Option<Outcome> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Records the outcome of the request `ctx` belongs to, if it has a slot.
pub(super) fn record(ctx: &Context<'_>, outcome: Outcome) {
    if let Some(slot) = ctx.data_opt::<OutcomeSlot>() {
        *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }
}
