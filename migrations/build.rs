//! `embed_migrations!` reads `sql/` at compile time, which cargo does not know: without this a
//! new migration file would not be embedded until something else made the crate rebuild.

fn main() {
    println!("cargo:rerun-if-changed=sql");
}
