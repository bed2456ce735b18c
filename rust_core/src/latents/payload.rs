//! The whole latents payload at once: drawn with the core's parallel seed policy (small plain
//! requests on the calling thread), scaled, and written as little-endian bytes straight into
//! the caller's reply buffer.

use crate::error::{CoreError, Result};
use crate::rng::policy::Plan;
use crate::rng::{self, Dtype, Generator, Noise, NoiseRequest, NoiseSliceMut, SeedMode};

use super::request::LatentsRequest;
use super::scale::{put_scaled, scale_in_place, Elem};

/// Below this many elements a plain request is small: drawing it takes less than handing it to
/// another thread (the policy's thread pool here; a worker thread in a server; a release of
/// Python's GIL in the binding), so callers do it where they are.
pub const SMALL_ELEMENTS: usize = 1 << 16;

/// Elements per block of the scale-and-move pass (cache-resident scratch).
const BLOCK: usize = 4096;

/// The request's unscaled noise into `out` (already checked against the plan).
pub(crate) fn generate(req: &NoiseRequest, plan: &Plan, out: NoiseSliceMut<'_>) -> Result<()> {
    let plain = req.batch_index.is_none() && plan.subseeds.is_none() && plan.resize.is_none();
    if !plain || out.len() > SMALL_ELEMENTS {
        return rng::sample_noise_into(req, out);
    }
    if out.len() != plan.numel || out.dtype() != req.dtype {
        return rng::sample_noise_into(req, out); // the policy reports the mismatch
    }
    if plan.numel == 0 {
        return Ok(());
    }
    macro_rules! draw {
        ($v:expr, $fill:ident) => {{
            if req.seed_mode == SeedMode::Batch {
                Generator::new(plan.seeds[0], req.source).$fill($v);
            } else {
                for (item, seed) in $v.chunks_mut(plan.item).zip(&plan.seeds) {
                    Generator::new(*seed, req.source).$fill(item);
                }
            }
        }};
    }
    match out {
        NoiseSliceMut::F32(v) => draw!(v, fill_f32),
        NoiseSliceMut::F64(v) => draw!(v, fill_f64),
        NoiseSliceMut::F16(v) => draw!(v, fill_f16),
        NoiseSliceMut::BF16(v) => draw!(v, fill_bf16),
    }
    Ok(())
}

/// See [`LatentsRequest::write_payload`].
pub(crate) fn write_payload(request: &LatentsRequest, buf: &mut [u8], start: usize) -> Result<()> {
    let expected = start.checked_add(request.nbytes());
    if expected != Some(buf.len()) {
        return Err(CoreError::invalid(
            "out",
            format!(
                "a payload of {} bytes after {start} needs a buffer of {:?} bytes, got {}",
                request.nbytes(),
                expected,
                buf.len()
            ),
        ));
    }
    if request.transform.is_some() {
        // A cast or packing goes through a typed buffer (see `LatentsRequest::working_bytes`).
        let mut values = Noise::zeros(request.dtype(), request.numel());
        request.fill(values.as_slice_mut())?;
        put_noise(&values, &mut buf[start..]);
        return Ok(());
    }
    match request.dtype() {
        Dtype::Float32 => write_typed::<f32>(request, buf, start),
        Dtype::Float64 => write_typed::<f64>(request, buf, start),
        Dtype::Float16 | Dtype::BFloat16 => write_typed::<u16>(request, buf, start),
    }
}

/// The little-endian bytes of `values` into `dst` (exactly their size).
fn put_noise(values: &Noise, dst: &mut [u8]) {
    match values {
        Noise::F32(v) => put_scaled(v, dst, Dtype::Float32, 1.0),
        Noise::F64(v) => put_scaled(v, dst, Dtype::Float64, 1.0),
        Noise::F16(v) => put_scaled(v, dst, Dtype::Float16, 1.0),
        Noise::BF16(v) => put_scaled(v, dst, Dtype::BFloat16, 1.0),
    }
}

/// Fills `buf[start..]` with the scaled little-endian payload.
///
/// The payload may start at any byte offset (CPython's `bytes` data sits 32 bytes into a
/// 16-aligned allocation, then the caller's prefix). The noise is generated at the aligned
/// address just below the payload (inside the scratch prefix region) and moved up by the
/// misalignment while it is scaled, block by block from the end, so no second buffer is needed.
fn write_typed<T: Elem>(request: &LatentsRequest, buf: &mut [u8], start: usize) -> Result<()> {
    let (noise, plan) = (&request.noise, &request.plan);
    let (dtype, factor) = (noise.dtype, request.init_noise_sigma());
    let size = T::SIZE;
    let numel = plan.numel;
    let nbytes = numel * size;
    let k = (buf.as_ptr() as usize + start) % std::mem::align_of::<T>();
    if k > start || cfg!(target_endian = "big") {
        // No room below the payload to realign (or a big-endian host): a separate buffer.
        let mut v = vec![T::default(); numel];
        generate(noise, plan, T::noise_slice(&mut v, dtype))?;
        put_scaled(&v, &mut buf[start..], dtype, factor);
        return Ok(());
    }
    let base = start - k;
    {
        let region = &mut buf[base..base + nbytes];
        // SAFETY: f32, f64 and u16 are valid for every bit pattern; the region's start is
        // aligned for T by construction, so the prefix and suffix of align_to_mut are empty
        // (checked below).
        let (head, typed, tail) = unsafe { region.align_to_mut::<T>() };
        if !head.is_empty() || !tail.is_empty() || typed.len() != numel {
            return Err(CoreError::invalid("out", "could not align the payload"));
        }
        generate(noise, plan, T::noise_slice(typed, dtype))?;
        if k == 0 {
            scale_in_place(typed, dtype, factor);
            return Ok(());
        }
    }
    // Move the values up by k bytes while scaling, last block first: a block's destination
    // only overlaps its own source (already read into the scratch) and the next block's
    // source (already moved).
    let mut scratch = vec![T::default(); BLOCK.min(numel)];
    let mut end = numel;
    while end > 0 {
        let begin = end.saturating_sub(BLOCK);
        let count = end - begin;
        let block = &mut scratch[..count];
        let src = base + begin * size;
        for (x, bytes) in block
            .iter_mut()
            .zip(buf[src..src + count * size].chunks_exact(size))
        {
            // SAFETY: `bytes` holds SIZE bytes of a T written by the policy; an unaligned
            // read of a plain-old-data value.
            *x = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) };
        }
        let dst = start + begin * size;
        put_scaled(block, &mut buf[dst..dst + count * size], dtype, factor);
        end = begin;
    }
    Ok(())
}
