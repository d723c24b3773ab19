//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files, but
//! cargo does not watch the directory by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
