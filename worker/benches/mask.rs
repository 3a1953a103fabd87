//! Cost of masking step output: `cargo bench -p gantry-worker --bench mask`.
//!
//! Every line a step writes passes through the step's `Masker`, so its cost per line bounds how
//! much output a worker can store. Measured: lines of 100 bytes of ordinary output (no secret in
//! them, the common case) and lines with one secret, for 0, 1, 10 and 50 secrets of 24 characters
//! (each secret also masks its base64 and JSON forms). Prints nanoseconds per line and MB/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use gantry_worker::mask::Masker;

fn secrets(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("SECRET_{i:04}_QM4TZR9WXB2LPV"))
        .collect()
}

fn lines(with_secret: Option<&str>) -> Vec<String> {
    (0..1000)
        .map(|i| {
            let mut line = format!("{i:06} compiling module {} of the deployment: ", i % 97);
            if let Some(secret) = with_secret {
                line.push_str(secret);
            }
            while line.len() < 100 {
                line.push('x');
            }
            line
        })
        .collect()
}

/// Masks `lines` repeatedly for about half a second; returns the time per line.
fn measure(masker: &Masker, lines: &[String]) -> Duration {
    let budget = Duration::from_millis(500);
    let started = Instant::now();
    let mut masked = 0u64;
    while started.elapsed() < budget {
        for line in lines {
            black_box(masker.mask(black_box(line)));
        }
        masked += lines.len() as u64;
    }
    started.elapsed() / masked as u32
}

fn main() {
    println!("| secrets | line | ns per line | MB/s |");
    println!("|---|---|---|---|");
    for n in [0, 1, 10, 50] {
        let values = secrets(n);
        let masker = Masker::new(&values);
        let plain = lines(None);
        let with = values.first().map(|s| lines(Some(s)));
        for (kind, lines) in [("plain", Some(plain)), ("one secret", with)] {
            let Some(lines) = lines else { continue };
            let per_line = measure(&masker, &lines);
            let mb_s = 100.0 / per_line.as_nanos().max(1) as f64 * 1e9 / 1e6;
            println!("| {n} | {kind} | {} | {mb_s:.0} |", per_line.as_nanos());
        }
    }
}
