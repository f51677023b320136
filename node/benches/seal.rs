//! The cost of sealing and opening one frame on an encrypted link, by frame size: the
//! per-message price the service benchmark's encryption figures are made of.
//!
//! `cargo bench -p node --bench seal`

use node::cluster::noise::{finish, initiate, respond, Key, Session};
use std::time::Instant;

fn session_pair() -> (Session, Session) {
    let key = Key::derive("bench secret", "bench");
    let (state, first) = initiate(&key, b"hello").expect("initiate");
    let responder = respond(std::slice::from_ref(&key), &first).expect("respond");
    let (server, answer) = responder.answer(b"welcome").expect("answer");
    let (client, _) = finish(state, &answer).expect("finish");
    (client, server)
}

fn main() {
    let (mut sender, mut receiver) = session_pair();
    println!("| frame | seal + open | frames per second, one core |");
    println!("| --- | --- | --- |");
    for size in [60usize, 200, 1_000, 10_000] {
        let frame = vec![7u8; size];
        let rounds = 2_000_000 / (size as u32 / 50 + 1);
        let started = Instant::now();
        for _ in 0..rounds {
            for sealed in sender.seal(&[&frame]) {
                let opened = receiver.open(&sealed, 1 << 20).expect("opens");
                assert!(opened.len() <= 1);
            }
        }
        let each = started.elapsed() / rounds;
        let rate = 1.0 / each.as_secs_f64();
        println!("| {size} B | {each:.2?} | {rate:.0} |");
    }
}
