//! Criterion benchmarks of the noise engine: `cargo bench -p sigmaserve-core --bench noise`.
//! The headline case is 16,777,216 float32 values (the size of the Python benchmark).
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sigmaserve_core::rng::{
    mt19937::Mt19937, sample_noise, CpuKernel, Dtype, Generator, GpuGeometry, NoiseRequest,
    SeedMode, Source,
};

const BIG: usize = 1 << 24;

fn sources() -> Vec<(&'static str, Source)> {
    vec![
        ("cpu", Source::Cpu(CpuKernel::Avx2)),
        ("cuda_unlimited", Source::Cuda(GpuGeometry::UNLIMITED)),
        (
            "cuda_h100",
            Source::Cuda(GpuGeometry::preset("h100").unwrap_or(GpuGeometry::UNLIMITED)),
        ),
    ]
}

fn big_fills(c: &mut Criterion) {
    let mut g = c.benchmark_group("fill_f32_16Mi");
    g.sample_size(10);
    g.throughput(Throughput::Elements(BIG as u64));
    let mut buf = vec![0f32; BIG];
    g.bench_function("mt19937_uniforms", |b| {
        b.iter(|| Mt19937::new(1).fill_uniform_f32(black_box(&mut buf)))
    });
    for (name, src) in sources() {
        g.bench_function(BenchmarkId::new("fill", name), |b| {
            b.iter(|| Generator::new(1, src).fill_f32(black_box(&mut buf)))
        });
    }
    g.bench_function("randn_alloc_cpu", |b| {
        b.iter(|| Generator::new(1, Source::default()).randn(BIG, Dtype::Float32))
    });
    g.finish();
}

fn latents(c: &mut Criterion) {
    let mut g = c.benchmark_group("latents");
    for (shape, label) in [
        (vec![1, 4, 64, 64], "sd15_1x4x64x64"),
        (vec![4, 4, 128, 128], "sdxl_4x4x128x128"),
        (vec![1, 16, 128, 128], "flux_1x16x128x128"),
    ] {
        let n: usize = shape.iter().product();
        g.throughput(Throughput::Elements(n as u64));
        for (name, src) in sources() {
            let seeds: Vec<u64> = (0..shape[0] as u64).collect();
            let mut req = NoiseRequest::new(shape.clone(), seeds);
            req.seed_mode = SeedMode::PerItem;
            req.source = src;
            g.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| sample_noise(&req))
            });
        }
    }
    g.finish();
}

fn other_dtypes(c: &mut Criterion) {
    let mut g = c.benchmark_group("dtypes_1Mi");
    g.sample_size(10);
    let n = 1 << 20;
    g.throughput(Throughput::Elements(n as u64));
    for dtype in Dtype::ALL {
        g.bench_function(BenchmarkId::new("cpu", dtype.name()), |b| {
            b.iter(|| Generator::new(3, Source::default()).randn(n, dtype))
        });
    }
    g.bench_function("a1111_nv_f32", |b| {
        b.iter(|| Generator::new(3, Source::A1111Nv).randn(n, Dtype::Float32))
    });
    g.finish();
}

criterion_group!(benches, big_fills, latents, other_dtypes);
criterion_main!(benches);
