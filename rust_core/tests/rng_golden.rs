//! Golden values from the spec (rng-torch.md §2, schedules-ecosystem.md §7): torch 2.13.0
//! CPU outputs, Random123 / curand known answers and A1111 NV values. These numbers come
//! from torch and the reference implementations, never from this crate.
#![allow(clippy::unwrap_used)]

use sigmaserve_core::rng::{randn, CpuKernel, Dtype, Generator, GpuGeometry, Noise, Source};

const CPU: Source = Source::Cpu(CpuKernel::Avx2);

/// Minimal SHA-256 (FIPS 180-4) for the golden digests.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn sha_prefix(noise: &Noise) -> String {
    sha256(&noise.to_le_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn f32s(noise: &Noise) -> Vec<f32> {
    match noise {
        Noise::F32(v) => v.clone(),
        other => panic!("expected f32, got {:?}", other.dtype()),
    }
}

fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "index {i}: got {g}, want {w} (tol {tol})"
        );
    }
}

#[test]
fn sha256_self_check() {
    let d = sha256(b"abc");
    assert_eq!(d[..4], [0xba, 0x78, 0x16, 0xbf]);
}

#[test]
fn cpu_seed0_latent() {
    let n = randn(4 * 64 * 64, 0, CPU, Dtype::Float32).unwrap();
    assert_close(
        &f32s(&n)[..4],
        &[-1.1258398, -1.1523602, -0.25057858, -0.43387881],
        1e-7,
    );
    assert_eq!(sha_prefix(&n), "24efac55b39e95b2");
}

#[test]
fn cpu_seed42_latent() {
    let n = randn(4 * 64 * 64, 42, CPU, Dtype::Float32).unwrap();
    assert_close(
        &f32s(&n)[..4],
        &[1.9269153, 1.4872841, 0.90071720, -2.1055210],
        1e-7,
    );
    assert_eq!(sha_prefix(&n), "e97f3de04c7c6ba8");
}

#[test]
fn cpu_seed_2_32_plus_5_equals_5() {
    let a = randn(4 * 64 * 64, (1u64 << 32) + 5, CPU, Dtype::Float32).unwrap();
    let b = randn(4 * 64 * 64, 5, CPU, Dtype::Float32).unwrap();
    assert_eq!(a, b);
    assert_eq!(sha_prefix(&a), "5703ceb9b4c010a8");
}

#[test]
fn cpu_seed1_128() {
    let n = randn(4 * 128 * 128, 1, CPU, Dtype::Float32).unwrap();
    assert_close(&f32s(&n)[..2], &[-1.5255959, -0.75023180], 1e-7);
    assert_eq!(sha_prefix(&n), "e7e564ccc6e45d5c");
}

#[test]
fn cpu_seed123_tail() {
    let n = randn(17, 123, CPU, Dtype::Float32).unwrap();
    assert_close(&f32s(&n)[..2], &[0.33737019, -1.0204719], 1e-7);
    assert_eq!(sha_prefix(&n), "b5469ede4153570b");
}

#[test]
fn cpu_scalar_path_and_float64() {
    let n = randn(4, 0, CPU, Dtype::Float32).unwrap();
    assert_close(
        &f32s(&n),
        &[1.5409961, -0.2934289, -2.1787894, 0.5684313],
        1e-7,
    );
    let d = randn(16, 0, CPU, Dtype::Float64).unwrap().to_f64_vec();
    let want = [-2.3104118, -0.3732509, -1.0608167, 0.9995094];
    for (g, w) in d.iter().zip(want) {
        assert!((g - w).abs() < 1e-7, "{g} vs {w}");
    }
}

#[test]
fn cpu_half_equals_rounded_float_when_multiple_of_16() {
    let f = f32s(&randn(4 * 64 * 64, 42, CPU, Dtype::Float32).unwrap());
    let h = randn(4 * 64 * 64, 42, CPU, Dtype::Float16).unwrap();
    let Noise::F16(h) = h else { panic!() };
    for (a, b) in f.iter().zip(&h) {
        assert_eq!(half::f16::from_f32(*a).to_bits(), *b);
    }
}

#[test]
fn nv_golden() {
    let n = randn(4 * 64 * 64, 0, Source::A1111Nv, Dtype::Float32).unwrap();
    assert_close(
        &f32s(&n)[..4],
        &[-0.9246624, -0.42534396, -2.6438458, 0.14518388],
        1e-7,
    );
    assert_eq!(sha_prefix(&n), "a4acb2fcf4d688e9");
    let n = randn(4 * 64 * 64, 42, Source::A1111Nv, Dtype::Float32).unwrap();
    assert_close(
        &f32s(&n)[..4],
        &[0.19401887, 2.1613739, -0.17205096, 0.84906000],
        1e-7,
    );
    assert_eq!(sha_prefix(&n), "df16496e26f1a033");
}

#[test]
fn nv_shape_3x4_and_second_call() {
    let mut g = Generator::new(0, Source::A1111Nv);
    let a = f32s(&g.randn(12, Dtype::Float32).unwrap());
    assert_close(
        &a,
        &[
            -0.92466, -0.42534, -2.64385, 0.14518, -0.12087, -0.57973, -0.62285, -0.32839,
            -1.07454, -0.36314, -1.67105, 2.26550,
        ],
        1e-5,
    );
    let b = f32s(&g.randn(4, Dtype::Float32).unwrap());
    assert_close(&b, &[0.18082589, -0.5522627, 0.9238134, -0.73497033], 1e-7);
}

#[test]
fn cuda_source_close_to_published_gpu_values() {
    // 16 float32 CUDA values for seed 0 start like this (third-party test file, spec §3.5).
    let n = randn(16, 0, Source::Cuda(GpuGeometry::UNLIMITED), Dtype::Float32).unwrap();
    assert_close(
        &f32s(&n)[..4],
        &[-0.9246624, -0.42534423, -2.6438458, 0.14518386],
        1e-6,
    );
}
