//! Numeric building blocks with the exact semantics of the torch / numpy calls the diffusers
//! schedulers use. Getting these right (FMA, accumulator width, overwrite of the last element,
//! ties-to-even) is what makes the last bit of a schedule match.
//!
//! Every function is total: degenerate lengths give empty or one-element results, never a panic.

/// Rounds to the nearest f32 (ties to even), the `r32` of the spec.
pub(crate) fn r32(x: f64) -> f32 {
    x as f32
}

/// numpy `round` / `np.round`: round half to even.
pub(crate) fn rne(x: f64) -> f64 {
    x.round_ties_even()
}

/// `torch.linspace(start, end, steps, dtype=float32)` on CPU: endpoints rounded to f32, an f32
/// step, the first half `fma(step, i, start)` and the second half `fma(-step, steps-1-i, end)`.
// torch 2.13 aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp (linspace kernel, FMA-contracted).
pub(crate) fn torch_linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    let (s, e) = (r32(start), r32(end));
    match steps {
        0 => Vec::new(),
        1 => vec![s],
        _ => {
            let step = (e - s) / (steps - 1) as f32;
            let half = steps / 2;
            (0..steps)
                .map(|i| {
                    if i < half {
                        step.mul_add(i as f32, s)
                    } else {
                        (-step).mul_add((steps - 1 - i) as f32, e)
                    }
                })
                .collect()
        }
    }
}

/// `torch.linspace(start, end, steps, dtype=float64)` on CPU (same rule as the f32 kernel).
pub(crate) fn torch_linspace_f64(start: f64, end: f64, steps: usize) -> Vec<f64> {
    match steps {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (end - start) / (steps - 1) as f64;
            let half = steps / 2;
            (0..steps)
                .map(|i| {
                    if i < half {
                        step.mul_add(i as f64, start)
                    } else {
                        (-step).mul_add((steps - 1 - i) as f64, end)
                    }
                })
                .collect()
        }
    }
}

/// numpy `linspace(start, stop, num)` in float64: `i*step + start` (two roundings, no FMA) and
/// the last element overwritten with `stop`.
// numpy 2.4 numpy/_core/function_base.py: linspace.
pub(crate) fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut out: Vec<f64> = if step == 0.0 {
        (0..num).map(|i| (i as f64 / div) * delta + start).collect()
    } else {
        (0..num).map(|i| i as f64 * step + start).collect()
    };
    out[num - 1] = stop;
    out
}

/// numpy `linspace(start, stop, num, endpoint=False)` in float64.
pub(crate) fn np_linspace_open(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    let step = (stop - start) / num as f64;
    (0..num).map(|i| i as f64 * step + start).collect()
}

/// numpy `arange(start, stop, step)` with a float step: `ceil((stop-start)/step)` elements,
/// `a0 = start`, `a1 = start + step`, then `start + i*(a1 - a0)`.
// numpy 2.4 numpy/_core/src/multiarray/ctors.c (PyArray_ArangeObj) and the DOUBLE_fill loop.
pub(crate) fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if !(len.is_finite() && len > 0.0) {
        return Vec::new();
    }
    let len = len as usize;
    let first = start;
    let second = start + step;
    let delta = second - first;
    (0..len)
        .map(|i| match i {
            0 => first,
            1 => second,
            _ => first + i as f64 * delta,
        })
        .collect()
}

/// `torch.cumprod` of a float32 tensor on CPU: a float64 accumulator, each output rounded to f32.
pub(crate) fn cumprod_f32(values: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    values
        .iter()
        .map(|&v| {
            acc *= f64::from(v);
            r32(acc)
        })
        .collect()
}

/// `np.interp(x, arange(len(fp)), fp)` with `fp` float32 upcast to float64; result float64.
// numpy 2.4 numpy/_core/src/multiarray/compiled_base.c: arr_interp (slope*(x-xp[j]) + fp[j]).
pub(crate) fn interp_index(x: f64, fp: &[f32]) -> f64 {
    let Some(&last) = fp.last() else {
        return f64::NAN;
    };
    let n = fp.len();
    if x.is_nan() {
        return f64::NAN;
    }
    if x >= (n - 1) as f64 {
        return f64::from(last);
    }
    if x <= 0.0 {
        return f64::from(fp[0]);
    }
    let j = x.floor() as usize;
    let lo = f64::from(fp[j]);
    if x == j as f64 {
        return lo;
    }
    let hi = f64::from(fp[j + 1]);
    (hi - lo) * (x - j as f64) + lo
}

/// Converts a float to int64 by truncation toward zero, as numpy `astype(np.int64)` does for
/// finite values in range. Non-finite values map to `i64::MIN`, numpy's result on x86.
pub(crate) fn trunc_i64(x: f64) -> i64 {
    if x.is_finite() && x.abs() < 9.2e18 {
        x.trunc() as i64
    } else {
        i64::MIN
    }
}

/// Float32 square root of `(1 - acp) / acp` elementwise: the training sigmas (torch f32 ops).
pub(crate) fn training_sigmas(alphas_cumprod: &[f32]) -> Vec<f32> {
    alphas_cumprod
        .iter()
        .map(|&a| ((1.0f32 - a) / a).sqrt())
        .collect()
}

/// numpy float32 `np.log` of an f32 array, computed correctly rounded (f64 ln, then f32).
pub(crate) fn ln_f32(values: &[f32]) -> Vec<f32> {
    values.iter().map(|&v| r32(f64::from(v).ln())).collect()
}

/// Reverses a vector in place and returns it (numpy `[::-1]`).
pub(crate) fn reversed<T>(mut values: Vec<T>) -> Vec<T> {
    values.reverse();
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_linspace_hits_both_ends() {
        let v = torch_linspace_f32(0.00085f64.sqrt(), 0.012f64.sqrt(), 1000);
        assert_eq!(v.len(), 1000);
        assert_eq!(v[0], r32(0.00085f64.sqrt()));
        assert_eq!(v[999], r32(0.012f64.sqrt()));
        assert_eq!(torch_linspace_f32(1.0, 2.0, 1), vec![1.0]);
        assert!(torch_linspace_f32(1.0, 2.0, 0).is_empty());
    }

    #[test]
    fn numpy_linspace_overwrites_stop() {
        let v = np_linspace(0.0, 999.0, 50);
        assert_eq!(v[49], 999.0);
        assert_eq!(r32(v[1]), 20.387_754_f32);
        assert_eq!(np_linspace(3.0, 5.0, 1), vec![3.0]);
    }

    #[test]
    fn arange_trailing_bug_gives_extra_element() {
        // numpy.arange(1000, 0, -1000/61) has 62 elements, the last one ~1e-13.
        let v = np_arange(1000.0, 0.0, -1000.0 / 61.0);
        assert_eq!(v.len(), 62);
        assert_eq!(rne(v[61]), 0.0);
        assert_eq!(np_arange(1000.0, 0.0, -1000.0 / 50.0).len(), 50);
    }

    #[test]
    fn round_half_even() {
        assert_eq!(rne(499.5), 500.0);
        assert_eq!(rne(812.5), 812.0);
        assert_eq!(trunc_i64(-0.5), 0);
        assert_eq!(trunc_i64(f64::NAN), i64::MIN);
    }

    #[test]
    fn interp_clamps_and_hits_nodes() {
        let fp = [1.0f32, 2.0, 4.0];
        assert_eq!(interp_index(-1.0, &fp), 1.0);
        assert_eq!(interp_index(5.0, &fp), 4.0);
        assert_eq!(interp_index(1.0, &fp), 2.0);
        assert_eq!(interp_index(1.5, &fp), 3.0);
        assert!(interp_index(0.5, &[]).is_nan());
    }

    #[test]
    fn cumprod_uses_f64_accumulator() {
        let v = cumprod_f32(&[0.5, 0.5, 3.0]);
        assert_eq!(v, vec![0.5, 0.25, 0.75]);
    }
}
