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
