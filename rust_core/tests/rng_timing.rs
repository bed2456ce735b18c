//! Manual timing probe (ignored by default):
//! `cargo test -p sigmaserve-core --release --test rng_timing -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use sigmaserve_core::rng::{mt19937::Mt19937, CpuKernel, Generator, GpuGeometry, Source};

fn best<F: FnMut()>(mut f: F) -> f64 {
    if let Ok(only) = std::env::var("RNG_TIMING_ONCE") {
        // One run only (for `perf stat` cycle counts).
        let _ = only;
        let t = Instant::now();
        f();
        return t.elapsed().as_secs_f64() * 1e3;
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    best
}

/// `RNG_TIMING_CASE=cuda_h100_1` etc. selects one case; unset runs all.
fn wanted(case: &str) -> bool {
    std::env::var("RNG_TIMING_CASE").map_or(true, |c| c == case)
}

#[test]
#[ignore]
fn timing_16mi() {
    let n = 1usize << 24;
    let mut buf = vec![0f32; n];
    println!(
        "mt uniforms      {:8.2} ms",
        best(|| Mt19937::new(1).fill_uniform_f32(&mut buf))
    );
    let pool1 = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let cpu = Source::Cpu(CpuKernel::Avx2);
    println!(
        "cpu fill 1 thr   {:8.2} ms",
        best(|| pool1.install(|| Generator::new(1, cpu).fill_f32(&mut buf)))
    );
    println!(
        "cpu fill         {:8.2} ms",
        best(|| Generator::new(1, cpu).fill_f32(&mut buf))
    );
    for (name, geo) in [
        ("unlimited", GpuGeometry::UNLIMITED),
        ("h100", GpuGeometry::preset("h100").unwrap()),
    ] {
        let src = Source::Cuda(geo);
        println!(
            "cuda {name:9} 1thr {:8.2} ms",
            best(|| pool1.install(|| Generator::new(1, src).fill_f32(&mut buf)))
        );
        println!(
            "cuda {name:9}      {:8.2} ms",
            best(|| Generator::new(1, src).fill_f32(&mut buf))
        );
    }
    if !wanted("alloc") {
        return;
    }
    println!(
        "alloc+fill cpu   {:8.2} ms",
        best(|| {
            let mut v = vec![0f32; n];
            Generator::new(1, cpu).fill_f32(&mut v);
            std::hint::black_box(&v);
        })
    );
}
