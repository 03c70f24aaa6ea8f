//! Gives every error of a request that was not executed a stable
//! `extensions.code`, as clients and generated code switch on codes, not on
//! messages: `GRAPHQL_PARSE_FAILED` for a document that does not parse (with
//! the parser's reason on one line; the position is in `locations`) and
//! `GRAPHQL_VALIDATION_FAILED` for one the schema refuses, `BAD_USER_INPUT`
//! for an argument value of the wrong type (with the format expected, for
//! the `DateTime` scalar). Errors that already carry a code (the limits')
//! keep theirs.

use async_graphql::ErrorExtensionValues;
use async_graphql::ServerError;

use crate::domain::INSTANT_EXPECTED;

/// Sets `code` on an error that has none.
fn with_code(mut error: ServerError, code: &'static str) -> ServerError {
    let extensions = error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

/// The parser's reason, without its drawing of the source: pest writes
/// ` --> 1:3`, the line with a caret under it, then `= expected …`.
fn one_line(message: &str) -> String {
    match message
        .lines()
        .find_map(|line| line.trim().strip_prefix("= "))
    {
        Some(reason) => format!("syntax error: {reason}"),
        None => message.lines().next().unwrap_or_default().trim().to_owned(),
    }
}

/// The error of a document that did not parse (or that a limit refused
/// before parsing, which keeps its code).
pub(super) fn parse_error(mut error: ServerError) -> ServerError {
    if error
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .is_none()
    {
        error.message = one_line(&error.message);
    }
    with_code(error, "GRAPHQL_PARSE_FAILED")
}

/// The errors of a document the schema refused.
pub(super) fn validation_errors(errors: Vec<ServerError>) -> Vec<ServerError> {
    errors
        .into_iter()
        .map(|mut error| {
            if !error.message.starts_with("Invalid value for argument") {
                return with_code(error, "GRAPHQL_VALIDATION_FAILED");
            }
            // async-graphql names the type, not what a value of it
            // looks like.
            if error.message.ends_with("expected type \"DateTime\"") {
                error.message = format!("{}: {INSTANT_EXPECTED}", error.message);
            }
            with_code(error, "BAD_USER_INPUT")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_dumps_become_one_line() {
        let dump = " --> 1:3\n  |\n1 | { user(\n  |   ^---\n  |\n  = expected selection";
        assert_eq!(one_line(dump), "syntax error: expected selection");
        assert_eq!(one_line("unknown operation"), "unknown operation");
    }
}
