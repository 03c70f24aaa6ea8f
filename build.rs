//! Marks the PostgreSQL half of the test suite as ignored when
//! `TEST_DATABASE_URL` is not set, so that `cargo test` reports those tests
//! as ignored rather than as passed without having run.

fn main() {
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
