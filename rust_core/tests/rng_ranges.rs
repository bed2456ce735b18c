//! Counter-based sources computed piece by piece (`Generator::fill_range`) equal one whole
//! draw, for every dtype, GPU geometry and piece size, and leave the stream where a whole
//! draw would after `skip`.
#![allow(clippy::unwrap_used)]

use sigmaserve_core::rng::{Dtype, Generator, GpuGeometry, Noise, Source};

const DTYPES: [Dtype; 4] = [
    Dtype::Float32,
    Dtype::Float64,
    Dtype::Float16,
    Dtype::BFloat16,
];

fn sources() -> Vec<Source> {
    let mut out = vec![Source::A1111Nv, Source::Cuda(GpuGeometry::UNLIMITED)];
    for (sm, threads) in [(1, 256), (1, 512), (3, 1024)] {
        out.push(Source::Cuda(GpuGeometry::new(sm, threads).unwrap()));
    }
    out.push(Source::Cuda(GpuGeometry::preset("t4").unwrap()));
    out
}

/// One whole draw, as little-endian bytes.
fn whole(gen: &mut Generator, dtype: Dtype, numel: usize) -> Vec<u8> {
    let mut v = Noise::zeros(dtype, numel);
    gen.fill(v.as_slice_mut());
    v.to_le_bytes()
}

/// The same draw in pieces of `piece` values, then `skip`.
fn pieces(gen: &mut Generator, dtype: Dtype, numel: usize, piece: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut start = 0;
    while start < numel {
        let len = piece.min(numel - start);
        let mut part = Noise::zeros(dtype, len);
        gen.fill_range(numel, start, part.as_slice_mut()).unwrap();
        bytes.extend(part.to_le_bytes());
        start += len;
    }
    gen.skip(numel, dtype);
    bytes
}

#[test]
fn pieces_equal_the_whole_draw() {
    for source in sources() {
        for dtype in DTYPES {
            for (numel, piece) in [(1, 1), (17, 5), (1000, 7), (5000, 999), (70_001, 16_384)] {
                let mut a = Generator::new(0xC0FF_EE00_0000_0042, source);
                let mut b = a.clone();
                // A first call so that the range starts at a non-zero offset.
                whole(&mut a, dtype, 300);
                whole(&mut b, dtype, 300);
                let want = whole(&mut a, dtype, numel);
                let got = pieces(&mut b, dtype, numel, piece);
                assert!(
                    want == got,
                    "{source:?} {dtype:?} numel {numel} piece {piece}"
                );
                assert_eq!(a.get_state(), b.get_state());
                assert!(whole(&mut a, dtype, 33) == whole(&mut b, dtype, 33));
            }
        }
    }
}

#[test]
fn ranges_are_checked() {
    let cpu = Generator::new(1, Source::Cpu(Default::default()));
    let mut v = Noise::zeros(Dtype::Float32, 4);
    assert!(cpu.fill_range(10, 0, v.as_slice_mut()).is_err());
    let nv = Generator::new(1, Source::A1111Nv);
    assert!(nv.fill_range(10, 7, v.as_slice_mut()).is_err());
    assert!(nv.fill_range(10, usize::MAX, v.as_slice_mut()).is_err());
    assert!(nv.fill_range(10, 6, v.as_slice_mut()).is_ok());
}
