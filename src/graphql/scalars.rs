//! The contract's custom scalars.

use async_graphql::{Description, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, Utc};

use crate::domain::{format_instant, parse_instant};

/// An RFC 3339 date-time; emitted in UTC with exactly six fractional digits.
///
/// Any offset is accepted on input (`+02:00` names the same instant as the
/// UTC form). More precision than a microsecond is refused: nothing is
/// stored that precisely, so such a value could never match a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Description)]
pub struct Timestamp(pub DateTime<Utc>);

#[Scalar(
    name = "DateTime",
    use_type_description,
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        parse_instant(text)
            .map(Timestamp)
            .map_err(InputValueError::custom)
    }

    /// Lets validation refuse a bad literal before anything runs (a request
    /// error), instead of failing the field at execution.
    fn is_valid(value: &Value) -> bool {
        Self::parse(value.clone()).is_ok()
    }

    fn to_value(&self) -> Value {
        Value::String(format_instant(&self.0))
    }
}

/// A JSON object (not an array or scalar).
///
/// Input of another JSON kind is reported as a field error of the mutation
/// (`NOT_AN_OBJECT`) together with the input's other errors.
#[derive(Debug, Clone, PartialEq, Description)]
pub struct JsonObject(pub serde_json::Value);

#[Scalar(
    name = "JSONObject",
    use_type_description,
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc8259#section-4"
)]
impl ScalarType for JsonObject {
    fn parse(value: Value) -> InputValueResult<Self> {
        value
            .into_json()
            .map(JsonObject)
            .map_err(|_| InputValueError::custom("expected JSON"))
    }

    fn to_value(&self) -> Value {
        Value::from_json(self.0.clone()).unwrap_or(Value::Null)
    }
}
