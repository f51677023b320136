//! The wasm entry point trunk builds: mounts the dashboard. On native targets it only
//! says what it is (the crate's logic is exercised there by `cargo test -p web`).

fn main() {
    #[cfg(target_arch = "wasm32")]
    web::start();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("the dashboard runs in a browser: build it with scripts/build-web.sh");
}
