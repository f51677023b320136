use shared::sim::schedule::{random_schedule, run_schedule};
fn main() {
    let seed: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let s = random_schedule(seed);
    if let Err(f) = run_schedule(&s) {
        println!("{f}");
    } else {
        println!("ok");
    }
}
