//! Golden arrays of schedules-diffusers.md §9.2 (diffusers 0.42.1 reference values) and the
//! error contract of `schedule::get_schedule`. Float32 values are compared within 2 ulp (torch's
//! float32 sqrt/log are not correctly rounded; the spec's §0 tolerances), integer and
//! spacing-only timesteps exactly.
#![allow(clippy::unwrap_used, clippy::excessive_precision)]

use sigmaserve_core::schedule::{
    get_schedule, list_presets, ConfigMap, ConfigValue, FloatArray, Schedule, Timesteps,
};

fn map(entries: &[(&str, ConfigValue)]) -> ConfigMap {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn schedule(
    name: &str,
    n: Option<usize>,
    preset: Option<&str>,
    o: &[(&str, ConfigValue)],
) -> Schedule {
    get_schedule(name, n, preset, &ConfigMap::new(), &map(o)).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rel * w.abs(), "[{i}] {g} vs {w}");
    }
}

fn f32_sigmas(s: &Schedule) -> &[f32] {
    s.sigmas
        .as_ref()
        .and_then(FloatArray::as_f32)
        .expect("float32 sigmas")
}

fn f32_timesteps(t: &Timesteps) -> Vec<f32> {
    match t {
        Timesteps::F32(v) => v.clone(),
        other => panic!("expected float32 timesteps, got {}", other.dtype()),
    }
}

const SIGMA_REL: f32 = 2.5e-7;

#[test]
fn sd15_lms_linspace_50() {
    let s = schedule("LMSDiscreteScheduler", Some(50), Some("sd15"), &[]);
    let t = f32_timesteps(&s.timesteps);
    let want_t: [f32; 50] = [
        999.0, 978.61224, 958.2245, 937.83673, 917.449, 897.0612, 876.67346, 856.2857, 835.89795,
        815.5102, 795.12244, 774.7347, 754.3469, 733.95917, 713.5714, 693.18365, 672.7959,
        652.40814, 632.0204, 611.6326, 591.2449, 570.8571, 550.46936, 530.0816, 509.69388,
        489.30612, 468.91837, 448.5306, 428.14285, 407.7551, 387.36734, 366.97958, 346.59183,
        326.20407, 305.8163, 285.42856, 265.0408, 244.65306, 224.2653, 203.87755, 183.48979,
        163.10204, 142.71428, 122.32653, 101.938774, 81.55102, 61.163265, 40.77551, 20.387754, 0.0,
    ];
    assert_eq!(t, want_t.to_vec());
    let want_s: [f32; 51] = [
        14.614647,
        12.936777,
        11.49165,
        10.242914,
        9.160355,
        8.218739,
        7.3971767,
        6.678018,
        6.046529,
        5.49032,
        4.998859,
        4.563308,
        4.1761093,
        3.8308442,
        3.5220652,
        3.2450604,
        2.99583,
        2.770918,
        2.5673409,
        2.3825438,
        2.214287,
        2.0606437,
        1.9199367,
        1.7906944,
        1.6716443,
        1.5616596,
        1.459756,
        1.3650707,
        1.2768338,
        1.1943716,
        1.1170816,
        1.0444264,
        0.9759299,
        0.9111574,
        0.8497199,
        0.79126155,
        0.7354525,
        0.6819885,
        0.6305759,
        0.58093166,
        0.5327704,
        0.4857924,
        0.4396675,
        0.39400446,
        0.34830308,
        0.3018552,
        0.25353044,
        0.20117965,
        0.13933751,
        0.029167535,
        0.0,
    ];
    assert_close(f32_sigmas(&s), &want_s, SIGMA_REL);
    assert!((s.init_noise_sigma - 14.614647).abs() < 4e-6);
}

#[test]
fn sdxl_euler_leading_30() {
    let s = schedule("EulerDiscreteScheduler", Some(30), Some("sdxl"), &[]);
    let want_t: Vec<f32> = (0..30).map(|k| (958 - 33 * k) as f32).collect();
    assert_eq!(f32_timesteps(&s.timesteps), want_t);
    let want_s: [f32; 31] = [
        11.4768505, 9.543586, 8.004313, 6.7683845, 5.767774, 4.9510417, 4.2790017, 3.7215917,
        3.2555883, 2.8629317, 2.5294874, 2.2441223, 1.998015, 1.7841321, 1.5968319, 1.4315611,
        1.2846218, 1.1529887, 1.0341669, 0.9260795, 0.8269738, 0.7353431, 0.6498568, 0.5692854,
        0.49240968, 0.41787988, 0.34393182, 0.267653, 0.18216637, 0.04131448, 0.0,
    ];
    assert_close(f32_sigmas(&s), &want_s, SIGMA_REL);
    assert!((s.init_noise_sigma - 11.520334243774414).abs() < 4e-6);
}

#[test]
fn dpmpp_2m_karras_25() {
    let s = schedule(
        "DPMSolverMultistepScheduler",
        Some(25),
        Some("sd15"),
        &[("use_karras_sigmas", ConfigValue::Bool(true))],
    );
    let want_t = vec![
        999, 970, 938, 905, 868, 829, 786, 739, 687, 630, 568, 500, 427, 352, 278, 207, 146, 96,
        59, 34, 18, 9, 4, 1, 0,
    ];
    assert_eq!(s.timesteps, Timesteps::I64(want_t));
    let want_s: [f32; 26] = [
        14.614647,
        12.283042,
        10.277832,
        8.560019,
        7.0944204,
        5.849391,
        4.796544,
        3.9104936,
        3.168611,
        2.5507934,
        2.0392456,
        1.6182765,
        1.2741053,
        0.9946831,
        0.7695228,
        0.5895429,
        0.4469209,
        0.33495766,
        0.24795172,
        0.1810835,
        0.13030873,
        0.09226093,
        0.06416228,
        0.043742858,
        0.029167535,
        0.0,
    ];
    assert_close(f32_sigmas(&s), &want_s, SIGMA_REL);
    assert_eq!(s.init_noise_sigma, 1.0);
}

#[test]
fn sd3_flow_match_28() {
    let s = schedule(
        "FlowMatchEulerDiscreteScheduler",
        Some(28),
        Some("sd3"),
        &[],
    );
    let want_s: [f32; 29] = [
        1.0,
        0.9873806,
        0.97410774,
        0.9601293,
        0.9453875,
        0.9298179,
        0.913349,
        0.8959003,
        0.8773819,
        0.8576923,
        0.83671665,
        0.8143248,
        0.79036826,
        0.7646771,
        0.73705584,
        0.7072785,
        0.6750823,
        0.6401602,
        0.60215056,
        0.560625,
        0.5150721,
        0.46487603,
        0.40928882,
        0.34739265,
        0.27804878,
        0.19982699,
        0.11090573,
        0.008928572,
        0.0,
    ];
    assert_close(f32_sigmas(&s), &want_s, SIGMA_REL);
    let t = f32_timesteps(&s.timesteps);
    assert_eq!(t[0], 1000.0);
    assert!((t[27] - 8.928572).abs() < 1e-5);
    assert!(s.warnings.iter().any(|w| w.contains("double shift")));
}

#[test]
fn flux_dev_1024_28() {
    let sigmas: Vec<f64> = (0..28)
        .map(|i| 1.0 + i as f64 * ((1.0 / 28.0 - 1.0) / 27.0))
        .collect();
    let mut sigmas = sigmas;
    sigmas[27] = 1.0 / 28.0;
    let s = schedule(
        "FlowMatchEulerDiscreteScheduler",
        None,
        Some("flux-dev"),
        &[
            ("sigmas", ConfigValue::FloatList(sigmas)),
            ("mu", ConfigValue::Float(1.15)),
        ],
    );
    let want_t: [f32; 28] = [
        1000.0, 988.4086, 976.2225, 963.3944, 949.87256, 935.59894, 920.509, 904.53076, 887.58344,
        869.5759, 850.4057, 829.9564, 808.0955, 784.67163, 759.5109, 732.41284, 703.1447, 671.4348,
        636.9645, 599.3567, 558.16284, 512.8441, 462.7484, 407.07843, 344.84894, 274.82797,
        195.45459, 104.7209,
    ];
    assert_close(&f32_timesteps(&s.timesteps), &want_t, SIGMA_REL);
}

#[test]
fn kdpm2_and_heun_shapes() {
    let heun = schedule("HeunDiscreteScheduler", Some(10), Some("sd15"), &[]);
    assert_eq!(heun.timesteps.len(), 19);
    assert_eq!(heun.sigmas.as_ref().unwrap().len(), 20);
    assert_eq!(heun.order, 2);
    let kdpm2 = schedule("KDPM2DiscreteScheduler", Some(10), Some("sd15"), &[]);
    assert_eq!(kdpm2.timesteps.len(), 19);
    let sig = f32_sigmas(&kdpm2);
    assert_eq!(sig.len(), 22);
    assert_eq!(&sig[19..], &[0.0, 0.0, 0.0]);
    let sde = schedule("DPMSolverSDEScheduler", Some(10), Some("sd15"), &[]);
    assert_eq!(sde.timesteps.dtype(), "float64");
}

#[test]
fn every_class_runs_and_sigmas_never_increase_for_the_default_path() {
    let mu = [("mu", ConfigValue::Float(1.0))];
    for name in sigmaserve_core::schedule::list_schedulers() {
        for n in [1usize, 2, 7, 25, 50] {
            let extra: &[(&str, ConfigValue)] = if name.starts_with("FlowMatchEuler") {
                &mu
            } else {
                &[]
            };
            let result = get_schedule(name, Some(n), None, &ConfigMap::new(), &map(extra));
            let Ok(s) = result else {
                continue; // LCM refuses more steps than original_inference_steps, PNDM < 4 with PRK
            };
            // Second-order schedulers repeat sigmas; inverse schedulers and KarrasVe's
            // `schedule` ascend.
            let ascending_or_repeating = ["KDPM2", "Heun", "SDE", "Inverse", "KarrasVe"];
            if let Some(sig) = s.sigmas.as_ref() {
                if !ascending_or_repeating.iter().any(|p| name.contains(p)) {
                    let values: Vec<f64> = (0..sig.len()).filter_map(|i| sig.get_f64(i)).collect();
                    assert!(
                        values.windows(2).all(|w| w[1] <= w[0]),
                        "{name} n={n}: {values:?}"
                    );
                }
            }
        }
    }
}

/// (scheduler, steps, preset, overrides, the field the error must name)
type ErrorCase<'a> = (&'a str, Option<usize>, Option<&'a str>, ConfigMap, &'a str);

#[test]
fn errors_name_their_field() {
    let empty = ConfigMap::new();
    let cases: Vec<ErrorCase<'_>> = vec![
        ("Nope", Some(10), None, empty.clone(), "scheduler"),
        (
            "EulerDiscreteScheduler",
            Some(0),
            None,
            empty.clone(),
            "num_inference_steps",
        ),
        (
            "EulerDiscreteScheduler",
            None,
            None,
            empty.clone(),
            "num_inference_steps",
        ),
        (
            "DDIMScheduler",
            Some(1001),
            None,
            empty.clone(),
            "num_inference_steps",
        ),
        (
            "EulerDiscreteScheduler",
            Some(10),
            Some("sd16"),
            empty.clone(),
            "preset",
        ),
        (
            "EulerDiscreteScheduler",
            Some(10),
            None,
            map(&[
                ("beta_start", ConfigValue::Float(0.5)),
                ("beta_end", ConfigValue::Float(0.1)),
            ]),
            "beta_start",
        ),
        (
            "EulerDiscreteScheduler",
            Some(10),
            None,
            map(&[("beta_end", ConfigValue::Float(f64::NAN))]),
            "beta_end",
        ),
        (
            "EulerDiscreteScheduler",
            Some(10),
            None,
            map(&[("steps_offset", ConfigValue::Bool(true))]),
            "steps_offset",
        ),
        (
            "EulerDiscreteScheduler",
            Some(10),
            None,
            map(&[("typo_key", ConfigValue::Int(1))]),
            "typo_key",
        ),
        // The classes added for issue 14 and their set_timesteps arguments.
        (
            "VQDiffusionScheduler",
            Some(10),
            None,
            empty.clone(),
            "scheduler",
        ),
        (
            "HeliosScheduler",
            Some(10),
            None,
            empty.clone(),
            "stage_index",
        ),
        (
            "HeliosScheduler",
            Some(10),
            None,
            map(&[("stage_index", ConfigValue::Int(3))]),
            "stage_index",
        ),
        (
            "SCMScheduler",
            Some(3),
            None,
            empty.clone(),
            "intermediate_timesteps",
        ),
        (
            "SCMScheduler",
            Some(2),
            None,
            map(&[("max_timesteps", ConfigValue::Str("x".into()))]),
            "max_timesteps",
        ),
        (
            "RePaintScheduler",
            Some(10),
            None,
            map(&[("jump_length", ConfigValue::Int(0))]),
            "jump_length",
        ),
        (
            "RFD4ProteinaScheduler",
            Some(10),
            None,
            empty.clone(),
            "schedule_mode",
        ),
        (
            "PiflowScheduler",
            Some(10),
            None,
            map(&[("sigmas", ConfigValue::FloatList(vec![1.0, 0.0]))]),
            "sigmas",
        ),
        (
            "DDIMInverseScheduler",
            Some(10),
            None,
            map(&[("timestep_spacing", ConfigValue::Str("linspace".into()))]),
            "timestep_spacing",
        ),
        (
            "UnCLIPScheduler",
            Some(10),
            None,
            map(&[("jump_n_sample", ConfigValue::Int(2))]),
            "jump_n_sample",
        ),
    ];
    for (name, n, preset, overrides, field) in cases {
        let err = get_schedule(name, n, preset, &empty, &overrides).unwrap_err();
        assert_eq!(err.field(), field, "{name} {n:?} {preset:?}");
    }
}

#[test]
fn presets_are_listed() {
    let names: Vec<&str> = list_presets().iter().map(|p| p.name).collect();
    for want in [
        "sd15",
        "sd21",
        "sd21-v",
        "sdxl",
        "sdxl-turbo",
        "sd3",
        "sd35",
        "flux-dev",
        "flux-schnell",
    ] {
        assert!(names.contains(&want), "{want}");
    }
}
