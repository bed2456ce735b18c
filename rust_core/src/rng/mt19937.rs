//! The 32-bit Mersenne Twister exactly as torch's CPU generator runs it.
//!
//! torch 2.13.0 `aten/src/ATen/core/MT19937RNGEngine.h`: `init_with_uint32` seeds the 624-word
//! state from the low 32 bits of the seed (classic `init_genrand`), keeps the full 64-bit seed
//! for `initial_seed()`, and tracks the position with the pair (`left_`, `next_`): a draw
//! decrements `left_`, regenerates the whole block when it reaches zero, then reads
//! `state_[next_++]` and tempers it. We keep the same two counters so that `get_state` /
//! `set_state` round-trip byte for byte with torch.
//!
//! The bulk fills twist and temper eight words at a time: portable code, and AVX2 versions
//! chosen at run time (intrinsics for the twist and the float32 uniforms, the portable code
//! compiled with AVX2 for raw words) that do the same integer operations; a test compares them.

use crate::error::{CoreError, Result};

use super::simd;

/// Words in the state.
pub const N: usize = 624;
/// The twist offset.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_B0DF;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7FFF_FFFF;

/// The engine state, field for field the `mt19937_data_pod` of torch.
#[derive(Clone, PartialEq, Eq)]
pub struct Mt19937 {
    seed: u64,
    left: u32,
    seeded: bool,
    next: u32,
    state: [u32; N],
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937")
            .field("seed", &self.seed)
            .field("left", &self.left)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

#[inline(always)]
fn mix(u: u32, v: u32) -> u32 {
    let y = (u & UPPER_MASK) | (v & LOWER_MASK);
    (y >> 1) ^ (if v & 1 != 0 { MATRIX_A } else { 0 })
}

#[inline(always)]
fn temper(mut y: u32) -> u32 {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C_5680;
    y ^= (y << 15) & 0xEFC6_0000;
    y ^= y >> 18;
    y
}

/// Regenerates all 624 words (torch's `next_state`), eight lanes at a time where the
/// dependencies allow it (they are at least 227 words apart, so 8-word chunks that load
/// before they store compute exactly the sequential recurrence).
#[inline(always)]
fn twist_body(s: &mut [u32; N]) {
    let mut i = 0;
    while i + 8 <= N - M {
        let mut out = [0u32; 8];
        for (k, o) in out.iter_mut().enumerate() {
            *o = s[i + k + M] ^ mix(s[i + k], s[i + k + 1]);
        }
        s[i..i + 8].copy_from_slice(&out);
        i += 8;
    }
    while i < N - M {
        s[i] = s[i + M] ^ mix(s[i], s[i + 1]);
        i += 1;
    }
    while i + 8 < N {
        let mut out = [0u32; 8];
        for (k, o) in out.iter_mut().enumerate() {
            *o = s[i + k + M - N] ^ mix(s[i + k], s[i + k + 1]);
        }
        s[i..i + 8].copy_from_slice(&out);
        i += 8;
    }
    while i < N - 1 {
        s[i] = s[i + M - N] ^ mix(s[i], s[i + 1]);
        i += 1;
    }
    s[N - 1] = s[M - 1] ^ mix(s[N - 1], s[0]);
}

/// [`twist_body`] written with AVX2 intrinsics: the same recurrence, eight words per step
/// (the compiler's own vectorization of `twist_body` shuffled the lanes at twice the cost).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn twist_avx2(s: &mut [u32; N]) {
    use std::arch::x86_64::*;
    let upper = _mm256_set1_epi32(UPPER_MASK as i32);
    let lower = _mm256_set1_epi32(LOWER_MASK as i32);
    let one = _mm256_set1_epi32(1);
    let matrix = _mm256_set1_epi32(MATRIX_A as i32);
    // s[i] ^ mix(...) for eight words whose inputs are all loaded before the store.
    let step = |s: &mut [u32; N], i: usize, far: usize| {
        let p = s.as_mut_ptr();
        // SAFETY: the callers keep i + 9 <= N and far + 8 <= N, so all accesses are inside s.
        unsafe {
            let cur = _mm256_loadu_si256(p.add(i).cast());
            let next = _mm256_loadu_si256(p.add(i + 1).cast());
            let far = _mm256_loadu_si256(p.add(far).cast());
            let y = _mm256_or_si256(_mm256_and_si256(cur, upper), _mm256_and_si256(next, lower));
            // MATRIX_A where the low bit of `next` is set: 0 - (next & 1) is all ones there.
            let odd = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_and_si256(next, one));
            let v = _mm256_xor_si256(
                _mm256_xor_si256(far, _mm256_srli_epi32::<1>(y)),
                _mm256_and_si256(odd, matrix),
            );
            _mm256_storeu_si256(p.add(i).cast(), v);
        }
    };
    let mut i = 0;
    while i + 8 <= N - M {
        step(s, i, i + M);
        i += 8;
    }
    while i < N - M {
        s[i] = s[i + M] ^ mix(s[i], s[i + 1]);
        i += 1;
    }
    while i + 8 < N {
        step(s, i, i + M - N);
        i += 8;
    }
    while i < N - 1 {
        s[i] = s[i + M - N] ^ mix(s[i], s[i + 1]);
        i += 1;
    }
    s[N - 1] = s[M - 1] ^ mix(s[N - 1], s[0]);
}

fn twist(s: &mut [u32; N]) {
    #[cfg(target_arch = "x86_64")]
    if simd::avx2_fma() {
        // SAFETY: the CPU supports AVX2 (checked at run time by `simd::avx2_fma`).
        unsafe { twist_avx2(s) };
        return;
    }
    twist_body(s)
}

/// Tempered words → float32 uniforms in [0, 1): `(w & 0xFFFFFF) · 2^-24`, exact.
/// torch 2.13.0 `aten/src/ATen/core/TransformationHelper.h` (`uniform_real`, float).
#[inline(always)]
fn words_to_uniform_f32(src: &[u32], dst: &mut [f32]) {
    const SCALE: f32 = 1.0 / 16_777_216.0;
    for (d, &w) in dst.iter_mut().zip(src) {
        *d = ((temper(w) & 0x00FF_FFFF) as i32) as f32 * SCALE;
    }
}

/// [`words_to_uniform_f32`] with AVX2 intrinsics, eight words per step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn words_to_uniform_f32_avx2(src: &[u32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let scale = _mm256_set1_ps(1.0 / 16_777_216.0);
    let low24 = _mm256_set1_epi32(0x00FF_FFFF);
    let b = _mm256_set1_epi32(0x9D2C_5680u32 as i32);
    let c = _mm256_set1_epi32(0xEFC6_0000u32 as i32);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n <= both lengths.
        unsafe {
            let mut y = _mm256_loadu_si256(src.as_ptr().add(i).cast());
            y = _mm256_xor_si256(y, _mm256_srli_epi32::<11>(y));
            y = _mm256_xor_si256(y, _mm256_and_si256(_mm256_slli_epi32::<7>(y), b));
            y = _mm256_xor_si256(y, _mm256_and_si256(_mm256_slli_epi32::<15>(y), c));
            y = _mm256_xor_si256(y, _mm256_srli_epi32::<18>(y));
            // The 24-bit integer converts exactly; the scale is a power of two.
            let u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(y, low24)), scale);
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), u);
        }
        i += 8;
    }
    words_to_uniform_f32(&src[i..n], &mut dst[i..n]);
}

#[inline(always)]
fn words_to_u32(src: &[u32], dst: &mut [u32]) {
    for (d, &w) in dst.iter_mut().zip(src) {
        *d = temper(w);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn words_to_u32_avx2(src: &[u32], dst: &mut [u32]) {
    words_to_u32(src, dst)
}

impl Mt19937 {
    /// Seeds the engine like `at::mt19937(seed)`: the state comes from `seed mod 2^32`,
    /// the full value is remembered as the initial seed.
    pub fn new(seed: u64) -> Mt19937 {
        let mut state = [0u32; N];
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Mt19937 {
            seed,
            left: 1,
            seeded: true,
            next: 0,
            state,
        }
    }

    /// The seed given at construction (all 64 bits, as torch's `initial_seed()`).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Words readable before the next regeneration.
    #[inline]
    fn available(&self) -> usize {
        self.left as usize - 1
    }

    #[inline]
    fn regenerate_if_needed(&mut self) {
        if self.left <= 1 {
            twist(&mut self.state);
            // One more than torch's 624: the draw that triggers the twist does not
            // decrement again, our bulk reader always does.
            self.left = N as u32 + 1;
            self.next = 0;
        }
    }

    /// One tempered 32-bit word (torch's `random()`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        self.regenerate_if_needed();
        let y = self.state[self.next as usize];
        self.next += 1;
        self.left -= 1;
        temper(y)
    }

    /// Two words, the first one as the high half (torch's `random64()`).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32();
        let lo = self.next_u32();
        (u64::from(hi) << 32) | u64::from(lo)
    }

    /// A float32 uniform `(w & 0xFFFFFF) · 2^-24`.
    #[inline]
    pub fn next_uniform_f32(&mut self) -> f32 {
        ((self.next_u32() & 0x00FF_FFFF) as i32) as f32 * (1.0 / 16_777_216.0)
    }

    /// A float64 uniform `(w64 & (2^53 − 1)) · 2^-53`.
    #[inline]
    pub fn next_uniform_f64(&mut self) -> f64 {
        ((self.next_u64() & ((1u64 << 53) - 1)) as i64) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Runs `f(offset, raw_words)` over successive untempered state runs covering `n` draws.
    #[inline(always)]
    fn for_each_run(&mut self, n: usize, mut f: impl FnMut(usize, &[u32])) {
        let mut done = 0;
        while done < n {
            self.regenerate_if_needed();
            let k = self.available().min(n - done);
            let start = self.next as usize;
            f(done, &self.state[start..start + k]);
            self.next += k as u32;
            self.left -= k as u32;
            done += k;
        }
    }

    /// Fills `out` with successive tempered words.
    pub fn fill_u32(&mut self, out: &mut [u32]) {
        let avx2 = simd::avx2_fma();
        self.for_each_run(out.len(), |off, words| {
            let dst = &mut out[off..off + words.len()];
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: AVX2 support was checked at run time.
                unsafe { words_to_u32_avx2(words, dst) };
                return;
            }
            let _ = avx2;
            words_to_u32(words, dst);
        });
    }

    /// Fills `out` with successive float32 uniforms (one word each).
    pub fn fill_uniform_f32(&mut self, out: &mut [f32]) {
        let avx2 = simd::avx2_fma();
        self.for_each_run(out.len(), |off, words| {
            let dst = &mut out[off..off + words.len()];
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: AVX2 support was checked at run time.
                unsafe { words_to_uniform_f32_avx2(words, dst) };
                return;
            }
            let _ = avx2;
            words_to_uniform_f32(words, dst);
        });
    }

    /// Fills `out` with successive float64 uniforms (two words each, high word first).
    pub fn fill_uniform_f64(&mut self, out: &mut [f64]) {
        for d in out.iter_mut() {
            *d = self.next_uniform_f64();
        }
    }

    /// Advances the stream by `n` words without tempering them.
    pub fn discard(&mut self, n: u64) {
        let mut left = n;
        while left > 0 {
            self.regenerate_if_needed();
            let k = (self.available() as u64).min(left) as u32;
            self.next += k;
            self.left -= k;
            left -= u64::from(k);
        }
    }

    /// The raw fields `(seed, left, seeded, next, state)` in torch's layout.
    pub fn raw_parts(&self) -> (u64, i32, bool, u32, &[u32; N]) {
        // Between calls `left` is always in 1..=624 like torch's: the transient 625 only
        // exists between a twist and the read that immediately follows it.
        (
            self.seed,
            self.left as i32,
            self.seeded,
            self.next,
            &self.state,
        )
    }

    /// Rebuilds an engine from torch's fields, validating them like `mt19937::is_valid`
    /// (and additionally rejecting positions that would read past the state).
    pub fn from_raw_parts(
        seed: u64,
        left: i32,
        seeded: bool,
        next: u64,
        state: [u32; N],
    ) -> Result<Mt19937> {
        if !seeded || left <= 0 || left > N as i32 || next > N as u64 {
            return Err(CoreError::invalid(
                "state",
                "invalid mt19937 state (left must be in 1..=624, next in 0..=624, seeded set)",
            ));
        }
        if next + left as u64 > N as u64 + 1 {
            return Err(CoreError::invalid(
                "state",
                "invalid mt19937 state (next + left exceeds 625: reads past the state)",
            ));
        }
        Ok(Mt19937 {
            seed,
            left: left as u32,
            seeded,
            next: next as u32,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_5489() {
        let mut mt = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = mt.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn bulk_equals_single() {
        let mut a = Mt19937::new(42);
        let mut b = Mt19937::new(42);
        let mut buf = vec![0u32; 3001];
        a.fill_u32(&mut buf[..7]);
        a.fill_u32(&mut buf[7..]);
        for &w in &buf {
            assert_eq!(w, b.next_u32());
        }
        assert_eq!(a, b);
        let mut c = Mt19937::new(42);
        c.discard(3001);
        assert_eq!(a, c);
    }

    /// The AVX2 twist and uniform conversion equal the portable code on arbitrary states.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_twist_and_uniforms_equal_portable() {
        if !simd::avx2_fma() {
            return;
        }
        let mut a = Mt19937::new(0x1234_5678).state;
        for round in 0..50 {
            let mut b = a;
            twist_body(&mut a);
            // SAFETY: AVX2 support checked above.
            unsafe { twist_avx2(&mut b) };
            assert_eq!(a, b, "round {round}");
            for len in [0, 1, 7, 8, 9, 100, N] {
                let mut x = vec![0f32; len];
                let mut y = vec![0f32; len];
                words_to_uniform_f32(&a[..len], &mut x);
                // SAFETY: AVX2 support checked above.
                unsafe { words_to_uniform_f32_avx2(&a[..len], &mut y) };
                assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn low_32_bits_only() {
        let mut a = Mt19937::new(5);
        let mut b = Mt19937::new((1u64 << 32) + 5);
        for _ in 0..2000 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
        assert_eq!(b.seed(), (1u64 << 32) + 5);
    }
}
