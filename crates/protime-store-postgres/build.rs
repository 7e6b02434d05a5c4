//! Rebuilds the crate when a migration is added to `migrations/`: `embed_migrations!`
//! embeds the files with `include_str!`, which tracks only the files that already existed.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
}
