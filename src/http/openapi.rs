//! What REST knows of the GraphQL schema, derived from its SDL, so that
//! REST repeats no field list and no rule: the selection a REST user holds
//! (every field of `User`, nested records in full), the fields
//! `UpdateUserInput` takes, and the OpenAPI 3.1 document of the routes,
//! whose schemas are the SDL's types in JSON Schema. Adding a field to the
//! GraphQL types adds it here.

use std::collections::{BTreeMap, HashSet};

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, ServiceDocument, Type, TypeDefinition,
    TypeKind, TypeSystemDefinition,
};
use serde_json::{json, Map, Value};

use crate::domain::ErrorCode;

/// The object type a REST user is.
const USER: &str = "User";
/// The input type a `PATCH` body is.
const INPUT: &str = "UpdateUserInput";
/// The type of one refused field.
const FIELD_ERROR: &str = "FieldError";

/// The schema's part in REST, computed once.
pub struct Contract {
    /// `user(id:)` selecting a whole user.
    pub read_operation: String,
    /// `updateUser` selecting a whole user on every outcome that has one.
    pub update_operation: String,
    /// The fields of `UpdateUserInput`.
    input_fields: HashSet<String>,
    /// The document served at `/openapi.json`.
    pub openapi: Value,
}

impl Contract {
    /// Reads the served schema's SDL.
    pub fn from_schema() -> Contract {
        let sdl = crate::graphql::sdl();
        // The SDL is the schema's own export: failing to read it back is a
        // defect found by the first test, never at a request.
        let document = parse_schema(&sdl).expect("the schema's SDL parses");
        Contract::from_document(&Types::of(&document))
    }

    fn from_document(types: &Types<'_>) -> Contract {
        let user = format!("fragment WholeUser on {USER} {}", types.selection(USER));
        let read_operation =
            format!("query RestUser($id: ID!) {{ user(id: $id) {{ ...WholeUser }} }}\n{user}");
        let update_operation = format!(
            "mutation RestUpdateUser($id: ID!, $expectedUpdatedAt: DateTime!, $input: {INPUT}!) {{ \
               updateUser(id: $id, expectedUpdatedAt: $expectedUpdatedAt, input: $input) {{ \
                 __typename \
                 ... on UpdateUserSuccess {{ user {{ ...WholeUser }} }} \
                 ... on UpdateConflict {{ currentUser {{ ...WholeUser }} }} \
                 ... on ValidationFailed {{ fieldErrors {{ field code message }} }} \
               }} \
             }}\n{user}"
        );
        let input_fields = types
            .input_fields(INPUT)
            .iter()
            .map(|field| field.name.node.to_string())
            .collect();
        Contract {
            read_operation,
            update_operation,
            input_fields,
            openapi: document(types),
        }
    }

    /// Why `value` cannot be the input field `field`: its code and message.
    pub fn input_field_error(&self, field: &str, value: &Value) -> Option<(ErrorCode, String)> {
        if !self.input_fields.contains(field) {
            let message = format!("{INPUT} has no field `{field}`");
            return Some((ErrorCode::UnknownField, message));
        }
        crate::graphql::update_input_field_error(field, value.clone())
            .map(|message| (ErrorCode::InvalidValue, message))
    }
}

/// The OpenAPI document as committed in `openapi.json`.
pub fn document_text() -> String {
    let document = Contract::from_schema().openapi;
    // Serializing a `Value` cannot fail.
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// The SDL's type definitions by name.
struct Types<'a>(BTreeMap<&'a str, &'a TypeDefinition>);

impl<'a> Types<'a> {
    fn of(document: &'a ServiceDocument) -> Types<'a> {
        Types(
            document
                .definitions
                .iter()
                .filter_map(|definition| match definition {
                    TypeSystemDefinition::Type(ty) => Some((ty.node.name.node.as_str(), &ty.node)),
                    _ => None,
                })
                .collect(),
        )
    }

    /// The fields of object type `name` that REST returns: those without
    /// arguments.
    fn fields(&self, name: &str) -> Vec<&'a FieldDefinition> {
        match self.0.get(name).map(|ty| &ty.kind) {
            Some(TypeKind::Object(object)) => object
                .fields
                .iter()
                .map(|field| &field.node)
                .filter(|field| field.arguments.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn input_fields(&self, name: &str) -> Vec<&'a InputValueDefinition> {
        match self.0.get(name).map(|ty| &ty.kind) {
            Some(TypeKind::InputObject(input)) => {
                input.fields.iter().map(|field| &field.node).collect()
            }
            _ => Vec::new(),
        }
    }

    fn is_object(&self, name: &str) -> bool {
        matches!(
            self.0.get(name).map(|ty| &ty.kind),
            Some(TypeKind::Object(_))
        )
    }

    /// The selection set of every field of object type `name`, nested
    /// objects in full.
    fn selection(&self, name: &str) -> String {
        let fields: Vec<String> = self
            .fields(name)
            .into_iter()
            .map(|field| {
                let inner = named(&field.ty.node);
                if self.is_object(inner) {
                    format!("{} {}", field.name.node, self.selection(inner))
                } else {
                    field.name.node.to_string()
                }
            })
            .collect();
        format!("{{ {} }}", fields.join(" "))
    }

    /// JSON Schema of every type reachable from `roots`, by name.
    fn components(&self, roots: &[&str]) -> Map<String, Value> {
        let mut components = Map::new();
        let mut pending: Vec<String> = roots.iter().map(|root| root.to_string()).collect();
        while let Some(name) = pending.pop() {
            if components.contains_key(&name) {
                continue;
            }
            let Some(definition) = self.0.get(name.as_str()) else {
                continue;
            };
            let mut schema = match &definition.kind {
                TypeKind::Object(_) => {
                    let fields = self.fields(&name);
                    pending.extend(fields.iter().map(|f| named(&f.ty.node).to_string()));
                    let properties = fields
                        .iter()
                        .map(|f| {
                            (
                                f.name.node.to_string(),
                                property(&f.ty.node, &f.description),
                            )
                        })
                        .collect();
                    let required = fields.iter().map(|f| f.name.node.to_string()).collect();
                    object_schema(properties, required)
                }
                TypeKind::InputObject(_) => {
                    let fields = self.input_fields(&name);
                    pending.extend(fields.iter().map(|f| named(&f.ty.node).to_string()));
                    let properties = fields
                        .iter()
                        .map(|f| {
                            (
                                f.name.node.to_string(),
                                property(&f.ty.node, &f.description),
                            )
                        })
                        .collect();
                    // Every field is optional: absent keeps, null clears.
                    object_schema(properties, Vec::new())
                }
                TypeKind::Enum(values) => json!({
                    "type": "string",
                    "enum": values.values.iter().map(|v| v.node.value.node.as_str()).collect::<Vec<_>>(),
                }),
                _ => continue,
            };
            if let Some(description) = &definition.description {
                schema["description"] = Value::from(description.node.as_str());
            }
            components.insert(name, schema);
        }
        components
    }
}

/// The named type under any list and non-null wrappers.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named(item),
    }
}

/// A field's schema, with its description.
fn property(ty: &Type, description: &Option<async_graphql::Positioned<String>>) -> Value {
    let mut schema = type_schema(ty);
    if let Some(description) = description {
        schema["description"] = Value::from(description.node.as_str());
    }
    schema
}

/// The JSON Schema of a GraphQL type reference.
fn type_schema(ty: &Type) -> Value {
    let schema = match &ty.base {
        BaseType::List(item) => json!({ "type": "array", "items": type_schema(item) }),
        BaseType::Named(name) => match name.as_str() {
            "String" | "ID" => json!({ "type": "string" }),
            "Boolean" => json!({ "type": "boolean" }),
            "Int" => json!({ "type": "integer" }),
            "Float" => json!({ "type": "number" }),
            "DateTime" => json!({ "type": "string", "format": "date-time" }),
            "JSONObject" => json!({ "type": "object" }),
            other => json!({ "$ref": format!("#/components/schemas/{other}") }),
        },
    };
    if !ty.nullable {
        return schema;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some(kind) => {
            let mut schema = schema.clone();
            schema["type"] = json!([kind, "null"]);
            schema
        }
        None => json!({ "anyOf": [schema, { "type": "null" }] }),
    }
}

fn object_schema(properties: Map<String, Value>, required: Vec<String>) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// The OpenAPI 3.1 document of the REST routes.
fn document(types: &Types<'_>) -> Value {
    let mut schemas = types.components(&[USER, INPUT, FIELD_ERROR]);
    schemas.insert("Problem".into(), problem_schema());
    schemas.insert(
        "ValidationProblem".into(),
        problem_with(
            "errors",
            json!({ "type": "array", "items": { "$ref": "#/components/schemas/FieldError" } }),
        ),
    );
    schemas.insert(
        "PreconditionFailedProblem".into(),
        problem_with(
            "currentUser",
            json!({ "$ref": "#/components/schemas/User" }),
        ),
    );
    let user_id = json!({
        "name": "userId", "in": "path", "required": true,
        "description": "The user's id.",
        "schema": { "type": "string" },
    });
    let environment_id = json!({
        "name": "environmentId", "in": "path", "required": true,
        "description": "Your token's environment; any other answers 404.",
        "schema": { "type": "string" },
    });
    let plain = json!({
        "get": get_operation("getUser", &[&user_id]),
        "patch": patch_operation("updateUser", &[&user_id]),
    });
    let scoped = json!({
        "get": get_operation("getEnvironmentUser", &[&environment_id, &user_id]),
        "patch": patch_operation("updateEnvironmentUser", &[&environment_id, &user_id]),
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "usergraph REST",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The user endpoint usergraph was modelled on, beside its GraphQL API at /graphql: the same users, rules and compare-and-set. A user's ETag is its updatedAt; send it back in If-Match to change the user.",
        },
        "paths": {
            "/users/{userId}": plain,
            "/environments/{environmentId}/users/{userId}": scoped,
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "headers": {
                "ETag": {
                    "description": "The user's version: its updatedAt as a strong entity tag.",
                    "schema": { "type": "string" },
                },
            },
        },
        "security": [{ "bearer": [] }],
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details; `code` is stable.",
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "code": { "type": "string" },
            "requestId": { "type": "string", "description": "On internal errors: the log's id of the request." },
        },
        "required": ["type", "title", "status", "detail", "code"],
    })
}

fn problem_with(member: &str, schema: Value) -> Value {
    json!({
        "allOf": [
            { "$ref": "#/components/schemas/Problem" },
            { "type": "object", "properties": { member: schema }, "required": [member] },
        ],
    })
}

fn problem(description: &str) -> Value {
    problem_of(description, "Problem")
}

fn problem_of(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": {
            "schema": { "$ref": format!("#/components/schemas/{schema}") },
        } },
    })
}

fn user_with_tag(description: &str) -> Value {
    json!({
        "description": description,
        "headers": { "ETag": { "$ref": "#/components/headers/ETag" } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/User" } } },
    })
}

/// The answers every route can give.
fn common_responses() -> Map<String, Value> {
    let mut responses = Map::new();
    responses.insert(
        "401".into(),
        problem("No bearer token, or an invalid or revoked one."),
    );
    responses.insert(
        "404".into(),
        problem("No user with this id in your environment."),
    );
    responses.insert(
        "500".into(),
        problem("An internal failure; `requestId` names it in the log."),
    );
    responses.insert(
        "503".into(),
        problem("The request ran longer than the server's request timeout."),
    );
    responses
}

fn get_operation(operation_id: &str, parameters: &[&Value]) -> Value {
    let mut responses = common_responses();
    responses.insert(
        "200".into(),
        user_with_tag("The user, with nested records."),
    );
    responses.insert(
        "304".into(),
        json!({
            "description": "If-None-Match holds the user's ETag: it has not changed.",
            "headers": { "ETag": { "$ref": "#/components/headers/ETag" } },
        }),
    );
    let mut parameters: Vec<Value> = parameters.iter().map(|p| (*p).clone()).collect();
    parameters.push(json!({
        "name": "If-None-Match", "in": "header", "required": false,
        "description": "ETags the client holds: 304 when one is the user's.",
        "schema": { "type": "string" },
    }));
    json!({
        "operationId": operation_id,
        "summary": "Get a user",
        "parameters": parameters,
        "responses": responses,
    })
}

fn patch_operation(operation_id: &str, parameters: &[&Value]) -> Value {
    let mut responses = common_responses();
    responses.insert(
        "200".into(),
        user_with_tag("Updated: the user and its new ETag."),
    );
    responses.insert(
        "400".into(),
        problem("The body is not a JSON object, or If-Match or ETag is malformed."),
    );
    responses.insert("412".into(), {
        let mut stale = problem_of(
            "The user changed since the version in If-Match; nothing was written. The body holds the current user, the ETag header its version.",
            "PreconditionFailedProblem",
        );
        stale["headers"] = json!({ "ETag": { "$ref": "#/components/headers/ETag" } });
        stale
    });
    responses.insert(
        "413".into(),
        problem("The body is larger than the server accepts."),
    );
    responses.insert(
        "415".into(),
        problem("The body is not declared as application/json."),
    );
    responses.insert(
        "422".into(),
        problem_of(
            "The input broke one or more rules, all listed in `errors` (GraphQL's FieldError: UNKNOWN_FIELD and INVALID_VALUE for a field of no such name or type, the rules' codes otherwise); nothing was written.",
            "ValidationProblem",
        ),
    );
    responses.insert(
        "428".into(),
        problem("No precondition naming a version was sent."),
    );
    let mut parameters: Vec<Value> = parameters.iter().map(|p| (*p).clone()).collect();
    // Documented as required: a request without it is refused (428). The
    // original API's `ETag` request header stands in for it, which OpenAPI
    // cannot express; its description says so.
    parameters.push(json!({
        "name": "If-Match", "in": "header", "required": true,
        "description": "The user's ETag, as the last GET or PATCH returned it (one strong entity tag). Clients of the original API may send the ETag header instead. Without either: 428.",
        "schema": { "type": "string", "pattern": "^(W/)?\"[^\"]*\"$" },
    }));
    parameters.push(json!({
        "name": "ETag", "in": "header", "required": false,
        "description": "For clients of the original API, read only when If-Match is absent: the user's last known updatedAt in ISO 8601 (RFC 3339).",
        "schema": { "type": "string" },
    }));
    json!({
        "operationId": operation_id,
        "summary": "Update a user",
        "description": "A partial update: leave a field out to keep it, send null to clear it, send a value to set it. Applied only if the user's version still equals the one in If-Match.",
        "parameters": parameters,
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/UpdateUserInput" } } },
        },
        "responses": responses,
    })
}
