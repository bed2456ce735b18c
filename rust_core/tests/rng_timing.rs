//! Manual timing probe (ignored by default):
//! `cargo test -p sigmaserve-core --release --test rng_timing -- --ignored --nocapture`.
//! `RNG_TIMING_CASE=<case>` runs one case (mt, cpu_1, cpu, cuda_unlimited_1, cuda_unlimited,
//! cuda_h100_1, cuda_h100, alloc); `RNG_TIMING_RUNS` sets the runs per case (best is shown).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use sigmaserve_core::rng::{mt19937::Mt19937, CpuKernel, Generator, GpuGeometry, Source};

fn best<F: FnMut()>(mut f: F) -> f64 {
    let runs = std::env::var("RNG_TIMING_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut best = f64::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    best
}

fn wanted(case: &str) -> bool {
    std::env::var("RNG_TIMING_CASE").map_or(true, |c| c == case)
}

/// A named fill of a float32 buffer, timed by this probe.
type Fill<'a> = Box<dyn FnMut(&mut [f32]) + 'a>;

#[test]
#[ignore]
fn timing_16mi() {
    let n = 1usize << 24;
    let mut buf = vec![0f32; n];
    let pool1 = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let cpu = Source::Cpu(CpuKernel::Avx2);
    let h100 = GpuGeometry::preset("h100").unwrap();
    let mut cases: Vec<(String, Fill<'_>)> = vec![
        (
            "mt".into(),
            Box::new(|b| Mt19937::new(1).fill_uniform_f32(b)),
        ),
        (
            "cpu_1".into(),
            Box::new(|b| pool1.install(|| Generator::new(1, cpu).fill_f32(b))),
        ),
        (
            "cpu".into(),
            Box::new(|b| Generator::new(1, cpu).fill_f32(b)),
        ),
    ];
    for (name, geo) in [("unlimited", GpuGeometry::UNLIMITED), ("h100", h100)] {
        let src = Source::Cuda(geo);
        let p = &pool1;
        cases.push((
            format!("cuda_{name}_1"),
            Box::new(move |b| p.install(|| Generator::new(1, src).fill_f32(b))),
        ));
        cases.push((
            format!("cuda_{name}"),
            Box::new(move |b| Generator::new(1, src).fill_f32(b)),
        ));
    }
    for (name, f) in cases.iter_mut() {
        if wanted(name) {
            println!("{name:18} {:8.2} ms", best(|| f(&mut buf)));
        }
    }
    if wanted("alloc") {
        let t = best(|| {
            let mut v = vec![0f32; n];
            Generator::new(1, cpu).fill_f32(&mut v);
            std::hint::black_box(&v);
        });
        println!("{:18} {t:8.2} ms", "alloc+cpu");
    }
}
