//! Run-time CPU feature detection for the SIMD fast paths.
//!
//! Every SIMD kernel has a portable twin that computes the same bits (the fast paths only
//! reorder independent lanes; each lane performs the same IEEE operations, with `mul_add`
//! exactly where the vector code uses an FMA). Setting the environment variable
//! `SIGMASERVE_SIMD=0` before the first use, or calling [`set_simd_enabled`], forces the
//! portable code; results do not change, only speed.

use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

fn detect() -> bool {
    if let Ok(v) = std::env::var("SIGMASERVE_SIMD") {
        if matches!(v.trim(), "0" | "off" | "false" | "no") {
            return false;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX2 + FMA fast paths are in use (detected once, then cached).
#[inline]
pub fn avx2_fma() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = detect();
            STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
    }
}

/// Whether the F16C float16 conversion is usable (with the other fast paths enabled).
#[inline]
pub fn f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2_fma() && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Enables or disables the SIMD fast paths for the whole process (enabling is a no-op on
/// CPUs without AVX2 + FMA). Meant for tests and benchmarks: results are identical either way.
pub fn set_simd_enabled(enabled: bool) {
    let on = enabled && {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    };
    STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// A short description of the active kernel set (`"avx2+fma"` or `"portable"`).
pub fn active_isa() -> &'static str {
    if avx2_fma() {
        "avx2+fma"
    } else {
        "portable"
    }
}
