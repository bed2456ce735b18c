//! Criterion benchmarks of `schedule::get_schedule` for the presets and a few popular samplers.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sigmaserve_core::schedule::{get_schedule, ConfigMap, ConfigValue};

fn overrides(entries: &[(&str, ConfigValue)]) -> ConfigMap {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn bench_presets(c: &mut Criterion) {
    let empty = ConfigMap::new();
    let mu = overrides(&[("mu", ConfigValue::Float(1.15))]);
    let karras = overrides(&[("use_karras_sigmas", ConfigValue::Bool(true))]);
    let cases: [(&str, &str, &str, &ConfigMap); 8] = [
        ("sd15", "PNDMScheduler", "pndm", &empty),
        ("sdxl", "EulerDiscreteScheduler", "euler", &empty),
        ("sd21-v", "DDIMScheduler", "ddim", &empty),
        ("sd3", "FlowMatchEulerDiscreteScheduler", "flow", &empty),
        (
            "flux-dev",
            "FlowMatchEulerDiscreteScheduler",
            "flow_mu",
            &mu,
        ),
        (
            "sd15",
            "DPMSolverMultistepScheduler",
            "dpmpp_karras",
            &karras,
        ),
        ("sd15", "KDPM2DiscreteScheduler", "kdpm2", &empty),
        ("sd15", "UniPCMultistepScheduler", "unipc", &empty),
    ];
    for (preset, scheduler, label, extra) in cases {
        c.bench_function(&format!("get_schedule/{preset}/{label}/30"), |b| {
            b.iter(|| get_schedule(black_box(scheduler), Some(30), Some(preset), &empty, extra))
        });
    }
}

criterion_group!(benches, bench_presets);
criterion_main!(benches);
