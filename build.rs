// The shipped blueprints are embedded with include_dir, which cannot tell cargo to watch them on
// stable Rust: without this, editing a template would not rebuild the binary.
fn main() {
    println!("cargo:rerun-if-changed=blueprints");
}
