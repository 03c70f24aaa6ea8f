//! `schema.graphql` is what `usergraph schema` prints.

#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the crate root");
    let generated = usergraph::graphql::sdl();
    assert!(
        committed == generated,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn the_binary_prints_the_same_schema() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_usergraph"))
        .arg("schema")
        .output()
        .expect("run usergraph schema");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        usergraph::graphql::sdl()
    );
}

mod compatibility {
    //! What a client built against a schema can rely on in a later one.

    use std::collections::HashMap;

    use async_graphql::parser::types::{
        BaseType, FieldDefinition, InputValueDefinition, Type, TypeKind, TypeSystemDefinition,
    };
    use async_graphql::Positioned;

    /// The types of an SDL document, by name.
    pub fn types(sdl: &str) -> HashMap<String, TypeKind> {
        let document = async_graphql::parser::parse_schema(sdl).expect("an SDL document");
        document
            .definitions
            .into_iter()
            .filter_map(|definition| match definition {
                TypeSystemDefinition::Type(ty) => {
                    Some((ty.node.name.node.to_string(), ty.node.kind))
                }
                _ => None,
            })
            .collect()
    }

    /// Whether a value of `new` always is a value of `old` (an output may
    /// only become non-null).
    fn output_compatible(old: &Type, new: &Type) -> bool {
        (old.nullable || !new.nullable) && same_shape(&old.base, &new.base, output_compatible)
    }

    /// Whether a value a client sends as `old` is accepted as `new` (an
    /// input may only become nullable).
    fn input_compatible(old: &Type, new: &Type) -> bool {
        (new.nullable || !old.nullable) && same_shape(&old.base, &new.base, input_compatible)
    }

    fn same_shape(old: &BaseType, new: &BaseType, inner: fn(&Type, &Type) -> bool) -> bool {
        match (old, new) {
            (BaseType::Named(old), BaseType::Named(new)) => old == new,
            (BaseType::List(old), BaseType::List(new)) => inner(old, new),
            _ => false,
        }
    }

    fn kind_name(kind: &TypeKind) -> &'static str {
        match kind {
            TypeKind::Scalar => "scalar",
            TypeKind::Object(_) => "type",
            TypeKind::Interface(_) => "interface",
            TypeKind::Union(_) => "union",
            TypeKind::Enum(_) => "enum",
            TypeKind::InputObject(_) => "input",
        }
    }

    fn inputs(
        at: &str,
        old: &[Positioned<InputValueDefinition>],
        new: &[Positioned<InputValueDefinition>],
        changes: &mut Vec<String>,
    ) {
        let find = |list: &[Positioned<InputValueDefinition>], name: &str| {
            list.iter()
                .find(|value| value.node.name.node == name)
                .map(|value| value.node.clone())
        };
        for old_value in old {
            let name = old_value.node.name.node.as_str();
            match find(new, name) {
                None => changes.push(format!("{at}.{name}: removed")),
                Some(new_value)
                    if !input_compatible(&old_value.node.ty.node, &new_value.ty.node) =>
                {
                    changes.push(format!(
                        "{at}.{name}: type {} became {}",
                        old_value.node.ty.node, new_value.ty.node
                    ))
                }
                Some(_) => {}
            }
        }
        for new_value in new {
            let name = new_value.node.name.node.as_str();
            let required =
                !new_value.node.ty.node.nullable && new_value.node.default_value.is_none();
            if required && find(old, name).is_none() {
                changes.push(format!("{at}.{name}: added as required"));
            }
        }
    }

    fn fields(
        at: &str,
        old: &[Positioned<FieldDefinition>],
        new: &[Positioned<FieldDefinition>],
        changes: &mut Vec<String>,
    ) {
        for old_field in old {
            let name = old_field.node.name.node.as_str();
            let Some(new_field) = new.iter().find(|f| f.node.name.node == name) else {
                changes.push(format!("{at}.{name}: removed"));
                continue;
            };
            if !output_compatible(&old_field.node.ty.node, &new_field.node.ty.node) {
                changes.push(format!(
                    "{at}.{name}: type {} became {}",
                    old_field.node.ty.node, new_field.node.ty.node
                ));
            }
            inputs(
                &format!("{at}.{name}"),
                &old_field.node.arguments,
                &new_field.node.arguments,
                changes,
            );
        }
    }

    fn names_removed(
        at: &str,
        old: &[String],
        new: &[String],
        what: &str,
        changes: &mut Vec<String>,
    ) {
        for name in old.iter().filter(|name| !new.contains(name)) {
            changes.push(format!("{at}: {what} {name} removed"));
        }
    }

    /// The changes from `old` to `new` that can break a client of `old`.
    pub fn breaking_changes(old: &str, new: &str) -> Vec<String> {
        let (old, new) = (types(old), types(new));
        let mut changes = Vec::new();
        let mut names: Vec<&String> = old.keys().collect();
        names.sort();
        for name in names {
            let old_kind = &old[name];
            let Some(new_kind) = new.get(name) else {
                changes.push(format!("{name}: removed"));
                continue;
            };
            let names_of = |list: &[Positioned<async_graphql::Name>]| -> Vec<String> {
                list.iter().map(|n| n.node.to_string()).collect()
            };
            match (old_kind, new_kind) {
                (TypeKind::Scalar, TypeKind::Scalar) => {}
                (TypeKind::Object(old), TypeKind::Object(new)) => {
                    fields(name, &old.fields, &new.fields, &mut changes);
                    names_removed(
                        name,
                        &names_of(&old.implements),
                        &names_of(&new.implements),
                        "interface",
                        &mut changes,
                    );
                }
                (TypeKind::Interface(old), TypeKind::Interface(new)) => {
                    fields(name, &old.fields, &new.fields, &mut changes);
                }
                (TypeKind::Union(old), TypeKind::Union(new)) => {
                    names_removed(
                        name,
                        &names_of(&old.members),
                        &names_of(&new.members),
                        "member",
                        &mut changes,
                    );
                }
                (TypeKind::Enum(old), TypeKind::Enum(new)) => {
                    let values = |e: &async_graphql::parser::types::EnumType| -> Vec<String> {
                        e.values
                            .iter()
                            .map(|v| v.node.value.node.to_string())
                            .collect()
                    };
                    names_removed(name, &values(old), &values(new), "value", &mut changes);
                }
                (TypeKind::InputObject(old), TypeKind::InputObject(new)) => {
                    inputs(name, &old.fields, &new.fields, &mut changes);
                }
                (old, new) => changes.push(format!(
                    "{name}: {} became {}",
                    kind_name(old),
                    kind_name(new)
                )),
            }
        }
        changes
    }
}

/// `schema.graphql` breaks no client of the released schema
/// (`released/`), except by the changes recorded there as deliberate.
#[test]
fn no_breaking_change_since_the_release() {
    let released = include_str!("../released/schema.graphql");
    let current = include_str!("../schema.graphql");
    let deliberate: Vec<&str> = include_str!("../released/breaking-changes.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let unrecorded: Vec<String> = compatibility::breaking_changes(released, current)
        .into_iter()
        .filter(|change| !deliberate.contains(&change.as_str()))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "schema.graphql breaks clients of the released schema:\n  {}\n\
         Undo these, or record each in released/breaking-changes.txt (see released/README.md).",
        unrecorded.join("\n  ")
    );
}

/// The guard sees each kind of breaking change, and no addition.
#[test]
fn the_guard_tells_breaking_from_safe() {
    let old = "type Query { a: String b(x: Int): Int! c: [String!] u: U e: E }
        type A { id: ID } type B { id: ID }
        union U = A | B
        enum E { X Y }
        input I { f: Int! g: String }
        type Mutation { m(i: I!): Int }";
    let safe = "type Query { a: String! b(x: Int, y: Int = 1, z: String): Int! c: [String!]! u: U e: E n: Int }
        type A { id: ID } type B { id: ID } type C { id: ID }
        union U = A | B | C
        enum E { X Y Z }
        input I { f: Int g: String h: Int = 2 }
        type Mutation { m(i: I!): Int }";
    assert_eq!(
        compatibility::breaking_changes(old, safe),
        Vec::<String>::new()
    );
    let breaking = "type Query { b(x: Int!, w: Int!): Int c: [String] u: U e: E }
        type A { id: ID }
        union U = A
        enum E { X }
        input I { f: Int! h: Int! }
        type Mutation { m(i: I!): Int }";
    let mut changes = compatibility::breaking_changes(old, breaking);
    changes.sort();
    assert_eq!(
        changes,
        [
            "B: removed",
            "E: value Y removed",
            "I.g: removed",
            "I.h: added as required",
            "Query.a: removed",
            "Query.b.w: added as required",
            "Query.b.x: type Int became Int!",
            "Query.b: type Int! became Int",
            "Query.c: type [String!] became [String]",
            "U: member B removed",
        ]
    );
}

/// Every field, argument, input field and enum value of the public API is
/// described: `schema.graphql` is what front-end developers read.
#[test]
fn every_field_and_argument_is_described() {
    use async_graphql::parser::types::{InterfaceType, ObjectType, TypeKind, TypeSystemDefinition};
    let document = async_graphql::parser::parse_schema(include_str!("../schema.graphql"))
        .expect("an SDL document");
    let mut undescribed = Vec::new();
    for definition in document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let name = ty.node.name.node.as_str();
        let mut check = |what: String, described: bool| {
            if !described {
                undescribed.push(what);
            }
        };
        match &ty.node.kind {
            TypeKind::Object(ObjectType { fields, .. })
            | TypeKind::Interface(InterfaceType { fields, .. }) => {
                for field in fields {
                    let field_name = &field.node.name.node;
                    check(
                        format!("{name}.{field_name}"),
                        field.node.description.is_some(),
                    );
                    for argument in &field.node.arguments {
                        let argument_name = &argument.node.name.node;
                        check(
                            format!("{name}.{field_name}({argument_name})"),
                            argument.node.description.is_some(),
                        );
                    }
                }
            }
            TypeKind::InputObject(input) => {
                for field in &input.fields {
                    let field_name = &field.node.name.node;
                    check(
                        format!("{name}.{field_name}"),
                        field.node.description.is_some(),
                    );
                }
            }
            TypeKind::Enum(values) => {
                for value in &values.values {
                    let value_name = &value.node.value.node;
                    check(
                        format!("{name}.{value_name}"),
                        value.node.description.is_some(),
                    );
                }
            }
            _ => {}
        }
    }
    assert!(undescribed.is_empty(), "no description: {undescribed:?}");
}
