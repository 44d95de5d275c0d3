//! The release server's link reads scripts/linker, its list of hot functions
//! and TWOSTEP_LINK_ORDER (see scripts/linker). Cargo relinks only when
//! something it knows of changes, so these are made known.
fn main() {
    println!("cargo::rerun-if-changed=scripts/linker");
    println!("cargo::rerun-if-changed=scripts/linker.d/hot-functions.txt");
    println!("cargo::rerun-if-env-changed=TWOSTEP_LINK_ORDER");
}
