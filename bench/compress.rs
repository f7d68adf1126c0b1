//! How ko's layer compression scales with cores: compresses the same 128 MiB (half text, half
//! random bytes, like a large Go binary with embedded assets) with 1 thread and with every core,
//! checks that the bytes are the same, and prints the throughput of each and their ratio, beside
//! a one-stream gzip of the same data for reference.
//! Not a test; `bench/bench.py` runs it. Usage: cargo run --release -p ko-core --example compress

use std::io::Write;
use std::time::Instant;

use ko_core::image::compress::{ParallelGzip, threads};

fn sample(len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len);
    let mut i = 0u64;
    while data.len() < len / 2 {
        data.extend_from_slice(format!("func handler{i}(w http.ResponseWriter, r *http.Request) {{ }}\n").as_bytes());
        i += 1;
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// Best of three: (seconds, compressed bytes).
fn gzip(data: &[u8], threads: usize) -> (f64, Vec<u8>) {
    let mut best = f64::MAX;
    let mut out = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let mut g = ParallelGzip::new(Vec::with_capacity(data.len()), threads);
        for chunk in data.chunks(1 << 20) {
            g.write_all(chunk).expect("in memory");
        }
        out = g.finish().expect("in memory");
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, out)
}

fn main() {
    let data = sample(128 << 20);
    let mb = data.len() as f64 / 1e6;
    // The reference: one gzip stream with one compressor (what ko wrote before).
    let start = Instant::now();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&data).expect("in memory");
    let reference = e.finish().expect("in memory");
    println!(
        "one-stream gzip level 1 (reference): {:.0} MB/s, ratio {:.2}",
        mb / start.elapsed().as_secs_f64(),
        reference.len() as f64 / data.len() as f64
    );
    let n = threads();
    let (one, a) = gzip(&data, 1);
    let (all, b) = gzip(&data, n);
    assert_eq!(a, b, "the bytes do not depend on the thread count");
    println!(
        "gzip level 1, {mb:.0} MB: 1 thread {:.0} MB/s, {n} threads {:.0} MB/s, speedup {:.2}x on {n} cores (target >= {:.1}x), ratio {:.2}",
        mb / one,
        mb / all,
        one / all,
        0.8 * n as f64,
        a.len() as f64 / data.len() as f64
    );
}
