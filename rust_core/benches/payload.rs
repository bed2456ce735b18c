//! Criterion benchmarks of a latents reply's payload: `cargo bench -p sigmaserve-core --bench
//! payload`. The in-place write (noise generated where it will be sent, aligned or moved up by
//! a misaligned prefix while it is scaled) against drawing into a separate buffer and copying,
//! and the bounded stream that StreamInitLatents sends, for an SD1.5 item and a 64 MiB tensor.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sigmaserve_core::latents::{LatentsArgs, LatentsRequest, PayloadStream};
use sigmaserve_core::rng::{sample_noise, Noise};

fn request(shape: &[i128]) -> Option<LatentsRequest> {
    LatentsRequest::new(LatentsArgs {
        shape: Some(shape.to_vec()),
        seeds: vec![1],
        sigma: Some(14.6),
        ..LatentsArgs::default()
    })
    .ok()
}

fn payloads(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply_payload");
    g.sample_size(10);
    for (name, shape) in [("sd15", [1, 4, 64, 64]), ("64MiB", [1, 4, 2048, 2048])] {
        let Some(req) = request(&shape) else { continue };
        g.throughput(Throughput::Bytes(req.nbytes() as u64));
        for prefix in [24usize, 21] {
            let mut buf = vec![0u8; prefix + req.nbytes()];
            g.bench_function(
                BenchmarkId::new(format!("in_place_prefix{prefix}"), name),
                |b| b.iter(|| req.write_payload(black_box(&mut buf), prefix)),
            );
        }
        let mut buf = vec![0u8; 21 + req.nbytes()];
        g.bench_function(BenchmarkId::new("separate_buffer_and_copy", name), |b| {
            b.iter(|| {
                let mut noise: Noise = sample_noise(req.noise()).unwrap_or(Noise::F32(Vec::new()));
                sigmaserve_core::latents::scale_noise(noise.as_slice_mut(), 14.6);
                buf[21..].copy_from_slice(&noise.to_le_bytes());
            })
        });
        g.bench_function(BenchmarkId::new("stream_1MiB_chunks", name), |b| {
            let mut chunk = vec![0u8; 1 << 20];
            b.iter(|| {
                let Ok(mut stream) = PayloadStream::new(&req) else {
                    return;
                };
                while stream.remaining_bytes() > 0 {
                    let n = chunk.len().min(stream.remaining_bytes());
                    let _ = stream.write_next(black_box(&mut chunk[..n]));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, payloads);
criterion_main!(benches);
