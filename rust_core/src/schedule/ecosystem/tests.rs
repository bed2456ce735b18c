//! Reference values: schedules-ecosystem spec §7 (computed upstream-equivalently, printed to
//! six decimals) and the constants quoted from the upstream sources.
#![allow(clippy::unwrap_used)]
use super::*;

fn sched(s: &str, n: usize, preset: Option<&str>, ov: &[(&str, Value)]) -> EcosystemSchedule {
    let overrides: Options = ov.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    get_schedule_by_name(s, n, preset, &Options::new(), &overrides).unwrap()
}

fn close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "length: got {got:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(*g) - w).abs() <= tol, "[{i}] got {g}, want {w}");
    }
}

const KARRAS20: [f64; 21] = [
    14.614643, 11.725368, 9.340202, 7.383618, 5.789413, 4.499835, 3.464747, 2.640841, 1.990916,
    1.483211, 1.090786, 0.790946, 0.564722, 0.396390, 0.273038, 0.184168, 0.121341, 0.077860,
    0.048481, 0.029167, 0.0,
];
const NORMAL20: [f64; 21] = [
    14.614640, 10.746800, 8.081519, 6.204935, 4.855653, 3.865378, 3.123761, 2.557166, 2.115658,
    1.764822, 1.480581, 1.245813, 1.048142, 0.878428, 0.729719, 0.596434, 0.473585, 0.355545,
    0.232164, 0.029167, 0.0,
];

#[test]
fn comfy_karras_and_normal_sd15_20() {
    let k = sched("comfyui:karras", 20, Some("sd15"), &[]);
    close(&k.sigmas, &KARRAS20, 1.5e-6);
    let q: Vec<f32> = [
        999., 962., 921., 876., 827., 772., 710., 640., 561., 474., 380., 285., 197., 123., 69.,
        35., 15., 6., 2., 0.,
    ]
    .to_vec();
    assert_eq!(k.timesteps, q);
    assert_eq!(k.init_noise, InitNoise::Sqrt1p);
    assert!((k.init_noise_sigma - 14.648813504855193).abs() < 2e-6);
    let n = sched("ComfyUI:Normal", 20, Some("sd15"), &[]);
    close(&n.sigmas, &NORMAL20, 1.5e-6);
    assert_eq!(n.scheduler, "comfyui:normal");
}

#[test]
fn a1111_karras_timesteps_interpolated() {
    // §7 maps ComfyUI-precision Karras sigmas through A1111's interpolating sigma_to_t.
    let ends = [
        ("sigma_min", Value::Float(0.029167158529162407)),
        ("sigma_max", Value::Float(14.614641189575195)),
    ];
    let k = sched("a1111:karras", 20, Some("sd15"), &ends);
    let want = [
        999.0, 961.733, 921.042, 876.314, 826.79, 771.552, 709.529, 639.614, 560.975, 473.748,
        380.131, 285.316, 197.08, 123.394, 69.256, 34.697, 15.481, 5.992, 1.783, 0.0,
    ];
    close(&k.timesteps, &want, 1.5e-3);
    assert_eq!(k.init_noise, InitNoise::Sigma);
    assert!((k.init_noise_sigma - 14.614643).abs() < 2e-6);
    assert_eq!(k.init_noise_sigma, f64::from(k.sigmas[0]));
    let s = sched(
        "a1111:karras",
        20,
        Some("sd15"),
        &[("sgm_noise_multiplier", Value::Bool(true))],
    );
    assert!((s.init_noise_sigma - 14.648813504855193).abs() < 3e-6);
}

#[test]
fn comfy_other_schedulers_sd15_20() {
    let cases: [(&str, &[f64]); 7] = [
        (
            "comfyui:exponential",
            &[
                14.614640, 10.536307, 7.596066, 5.476323, 3.948111, 2.846359, 2.052060, 1.479416,
                1.066573, 0.768937, 0.554359, 0.399661, 0.288132, 0.207727, 0.149759, 0.107967,
                0.077838, 0.056117, 0.040457, 0.029167, 0.0,
            ],
        ),
        (
            "comfyui:sgm_uniform",
            &[
                14.614640, 10.907317, 8.307171, 6.447690, 5.092408, 4.086081, 3.325069, 2.739083,
                2.279731, 1.913210, 1.615580, 1.369643, 1.162865, 0.985955, 0.831884, 0.695149,
                0.571189, 0.455736, 0.343705, 0.225452, 0.0,
            ],
        ),
        (
            "comfyui:simple",
            &[
                14.614641, 10.904236, 8.302803, 6.442955, 5.087763, 4.081729, 3.321083, 2.735469,
                2.276463, 1.910251, 1.612886, 1.367173, 1.160578, 0.983817, 0.829860, 0.693205,
                0.569285, 0.453819, 0.341674, 0.223003, 0.0,
            ],
        ),
        (
            "comfyui:ddim_uniform",
            &[
                11.028331, 8.390685, 6.506398, 5.134431, 4.116696, 3.347764, 2.756196, 2.292854,
                1.923443, 1.623692, 1.376179, 1.168216, 0.990409, 0.835653, 0.698398, 0.574050,
                0.458333, 0.346187, 0.228147, 0.041314, 0.0,
            ],
        ),
        (
            "comfyui:beta",
            &[
                14.614641, 13.515696, 11.542770, 9.388924, 7.371844, 5.686592, 4.372802, 3.374725,
                2.615236, 2.047312, 1.618279, 1.284621, 1.027329, 0.821221, 0.654885, 0.515391,
                0.395510, 0.291284, 0.199059, 0.111419, 0.0,
            ],
        ),
        (
            "comfyui:kl_optimal",
            &[
                14.614633, 6.807148, 4.401471, 3.221912, 2.514688, 2.038659, 1.692815, 1.427374,
                1.214932, 1.039140, 0.889614, 0.759422, 0.643738, 0.539076, 0.442829, 0.352985,
                0.267937, 0.186359, 0.107109, 0.029167, 0.0,
            ],
        ),
        (
            "comfyui:linear_quadratic",
            &[
                14.614641, 14.578105, 14.541568, 14.505032, 14.468495, 14.431958, 14.395422,
                14.358885, 14.322349, 14.285812, 14.249275, 14.073899, 13.620845, 12.890114,
                11.881703, 10.595615, 9.031848, 7.190403, 5.071280, 2.674479, 0.0,
            ],
        ),
    ];
    for (name, want) in cases {
        let s = sched(name, 20, Some("sd15"), &[]);
        close(&s.sigmas, want, 2e-6);
    }
    let b = sched("comfyui:beta", 20, Some("sd15"), &[]);
    let t: Vec<f32> = [
        999., 986., 959., 922., 876., 823., 765., 703., 637., 569., 500., 430., 362., 296., 234.,
        176., 123., 77., 40., 13.,
    ]
    .to_vec();
    assert_eq!(b.timesteps, t);
    let l = sched("comfyui:laplace", 20, Some("sd15"), &[]);
    close(
        &l.sigmas,
        &[
            14.614641, 3.082060, 2.179398, 1.779485, 1.541085, 1.378392, 1.258296, 1.164957,
            1.089718, 1.027397, 0.973334, 0.917668, 0.858401, 0.794726, 0.725483, 0.648893,
            0.561960, 0.458842, 0.324458, 0.029167,
        ],
        2e-6,
    );
}

#[test]
fn a1111_schedulers_sd15_20() {
    // §7 uses ComfyUI's table ends for the A1111 rows; pass them as overrides.
    let ends = [
        ("sigma_min", Value::Float(0.029167158529162407)),
        ("sigma_max", Value::Float(14.614641189575195)),
    ];
    let b = sched("a1111:beta", 20, Some("sd15"), &ends);
    close(
        &b.sigmas,
        &[
            14.614641, 14.415242, 13.986320, 13.392736, 12.667440, 11.835502, 10.918622, 9.936795,
            8.909074, 7.853992, 6.789816, 5.734735, 4.707013, 3.725186, 2.808307, 1.976368,
            1.251072, 0.657487, 0.228566, 0.029167, 0.0,
        ],
        2e-6,
    );
    let k = sched("a1111:kl_optimal", 20, Some("sd15"), &ends);
    close(
        &k.sigmas,
        &[
            14.614633, 6.995652, 4.565035, 3.359447, 2.632888, 2.142741, 1.786445, 1.513153,
            1.294767, 1.114476, 0.961588, 0.828961, 0.711627, 0.606001, 0.509419, 0.419836,
            0.335637, 0.255509, 0.178346, 0.103189, 0.029167,
        ],
        2e-6,
    );
    let old = sched(
        "a1111:karras",
        20,
        Some("sd15"),
        &[("use_old_karras_scheduler_sigmas", Value::Bool(true))],
    );
    close(
        &old.sigmas,
        &[
            10.000000, 8.353620, 6.945261, 5.745529, 4.728009, 3.869024, 3.147434, 2.544415,
            2.043264, 1.629218, 1.289275, 1.012038, 0.787553, 0.607177, 0.463437, 0.349910,
            0.261106, 0.192366, 0.139760, 0.100000, 0.0,
        ],
        2e-6,
    );
    // The discard-penultimate row uses A1111's own (k-diffusion) table ends.
    let d = sched(
        "a1111:automatic",
        20,
        Some("sd15"),
        &[("sampler", Value::Str("DPM2".into()))],
    );
    close(
        &d.sigmas,
        &[
            14.614643, 11.857190, 9.558269, 7.652492, 6.082160, 4.796544, 3.751262, 2.907642,
            2.232161, 1.695911, 1.274105, 0.945620, 0.692574, 0.499939, 0.355185, 0.247952,
            0.169758, 0.113730, 0.074364, 0.047306, 0.0,
        ],
        2e-6,
    );
    // A1111's own float32 table differs from ComfyUI's by up to ~1e-6 (spec §1.1).
    let u = sched("a1111:uniform", 20, Some("sd15"), &[]);
    close(&u.sigmas, &NORMAL20, 4e-6);
    let mut ov = ends.to_vec();
    ov.push(("rho", Value::Float(2.0)));
    let p = sched("a1111:polyexponential", 20, Some("sd15"), &ov);
    close(
        &p.sigmas,
        &[
            14.614643, 7.728013, 4.229656, 2.396075, 1.404926, 0.852638, 0.535591, 0.348225,
            0.234339, 0.163225, 0.117676, 0.087810, 0.067821, 0.054217, 0.044861, 0.038420,
            0.034057, 0.031247, 0.029674, 0.029167, 0.0,
        ],
        3e-6,
    );
}

#[test]
fn a1111_img2img_and_comfy_denoise() {
    let a = sched(
        "a1111:uniform",
        20,
        Some("sd15"),
        &[("denoising_strength", Value::Float(0.5))],
    );
    assert_eq!(a.num_inference_steps, 11);
    assert!((f64::from(a.sigmas[0]) - 1.764822).abs() < 3e-6);
    assert!((a.init_noise_sigma - 1.764822).abs() < 3e-6);
    let c = sched(
        "comfyui:normal",
        20,
        Some("sd15"),
        &[("denoise", Value::Float(0.5))],
    );
    assert_eq!(c.num_inference_steps, 20);
    assert!((f64::from(c.sigmas[0]) - 1.54816).abs() < 1e-5);
    assert_eq!(c.init_noise, InitNoise::Sigma);
}

#[test]
fn align_your_steps() {
    let c10 = sched("comfyui:align_your_steps", 10, Some("sd15"), &[]);
    close(
        &c10.sigmas,
        &[
            14.614641, 6.474576, 3.863675, 2.694615, 1.884192, 1.394380, 0.964258, 0.652369,
            0.397746, 0.151523, 0.0,
        ],
        1.5e-6,
    );
    let c20 = sched("ays:sd15", 20, None, &[]);
    close(
        &c20.sigmas,
        &[
            14.614641, 9.727467, 6.474576, 5.001565, 3.863675, 3.226626, 2.694615, 2.253258,
            1.884192, 1.620889, 1.394380, 1.159544, 0.964258, 0.793128, 0.652369, 0.509389,
            0.397746, 0.245495, 0.151523, 0.066479, 0.0,
        ],
        1.5e-6,
    );
    let d = sched("ays:sd15", 10, None, &[("denoise", Value::Float(0.5))]);
    close(
        &d.sigmas,
        &[1.394380, 0.964258, 0.652369, 0.397746, 0.151523, 0.0],
        1.5e-6,
    );
    let x = sched("ays:sdxl", 10, None, &[]);
    close(
        &x.sigmas,
        &[
            14.614641, 6.318449, 3.768179, 2.181148, 1.340524, 0.862072, 0.555069, 0.379854,
            0.233236, 0.111419, 0.0,
        ],
        1.5e-6,
    );
    let a10 = sched("a1111:align_your_steps", 10, Some("sd15"), &[]);
    close(
        &a10.sigmas,
        &[
            14.615000, 6.113513, 3.565114, 2.393873, 1.649956, 1.135787, 0.742518, 0.445007,
            0.169205, 0.029000, 0.0,
        ],
        1.5e-6,
    );
    let a20 = sched("a1111:align_your_steps", 20, Some("sd15"), &[]);
    close(
        &a20.sigmas,
        &[
            14.615000, 9.521713, 6.301180, 4.800019, 3.717901, 3.078137, 2.548905, 2.111525,
            1.770252, 1.511015, 1.266044, 1.041299, 0.851409, 0.693412, 0.544092, 0.420168,
            0.265765, 0.159920, 0.069351, 0.029000, 0.0,
        ],
        1.5e-6,
    );
    // Published timesteps of the SD1.5 table.
    let t: Vec<f32> = c10.timesteps.iter().map(|t| t.round()).collect();
    assert_eq!(
        t,
        vec![999., 850., 736., 645., 545., 455., 343., 233., 124., 24.]
    );
}

#[test]
fn flow_models() {
    let s3 = sched("comfyui:simple", 20, Some("sd3"), &[]);
    close(
        &s3.sigmas,
        &[
            1.0000, 0.9828, 0.9643, 0.9444, 0.9231, 0.9000, 0.8750, 0.8478, 0.8182, 0.7857, 0.7500,
            0.7105, 0.6667, 0.6176, 0.5625, 0.5000, 0.4286, 0.3462, 0.2500, 0.1364, 0.0,
        ],
        6e-5,
    );
    assert_eq!(s3.init_noise, InitNoise::Flow);
    assert_eq!(s3.init_noise_sigma, 1.0);
    assert!((f64::from(s3.timesteps[0]) - 1000.0).abs() < 1e-3);
    assert!(!s3.warnings.is_empty());
    let n3 = sched("comfyui:normal", 20, Some("sd3"), &[]);
    assert!((f64::from(n3.sigmas[1]) - 0.9819).abs() < 6e-5);
    assert!((f64::from(n3.sigmas[18]) - 0.1498).abs() < 6e-5);
    assert!((f64::from(n3.sigmas[19]) - 0.0089).abs() < 6e-5);
    let fx = sched("comfyui:simple", 20, Some("flux-dev"), &[]);
    close(
        &fx.sigmas,
        &[
            1.0000, 0.9836, 0.9660, 0.9471, 0.9266, 0.9045, 0.8805, 0.8543, 0.8257, 0.7942, 0.7595,
            0.7210, 0.6780, 0.6297, 0.5751, 0.5128, 0.4412, 0.3579, 0.2598, 0.1425, 0.0,
        ],
        6e-5,
    );
    let lq = sched("comfyui:linear_quadratic", 20, Some("sd3"), &[]);
    close(
        &lq.sigmas,
        &[
            1.0000, 0.9975, 0.9950, 0.9925, 0.9900, 0.9875, 0.9850, 0.9825, 0.9800, 0.9775, 0.9750,
            0.9630, 0.9320, 0.8820, 0.8130, 0.7250, 0.6180, 0.4920, 0.3470, 0.1830, 0.0,
        ],
        6e-5,
    );
    // Flux μ from the resolution (ComfyUI ModelSamplingFlux node).
    let r = sched(
        "comfyui:simple",
        4,
        Some("flux-dev"),
        &[("width", Value::Int(512)), ("height", Value::Int(512))],
    );
    assert!(matches!(r.config.get("mu"), Some(Value::Float(m)) if (m - 0.63).abs() < 1e-9));
    // Other models' schedules do not depend on the size a pipeline-level request carries.
    let size = [("width", Value::Int(512)), ("height", Value::Int(768))];
    for (name, preset) in [("comfyui:karras", "sd15"), ("comfyui:simple", "sd3")] {
        let sized = sched(name, 6, Some(preset), &size);
        assert_eq!(
            sized.sigmas,
            sched(name, 6, Some(preset), &[]).sigmas,
            "{name}"
        );
    }
}

#[test]
fn kdiffusion_vp_and_ddim_counts() {
    let v = sched("kdiffusion:vp", 20, None, &[]);
    close(
        &v.sigmas,
        &[
            152.166977, 91.186256, 56.164043, 35.552780, 23.126186, 15.453005, 10.601167, 7.459547,
            5.375795, 3.959092, 2.970695, 2.261990, 1.738754, 1.340155, 1.026168, 0.769882,
            0.552722, 0.361384, 0.185751, 0.010486, 0.0,
        ],
        2e-4,
    );
    for (n, actual) in [
        (7, 8),
        (10, 10),
        (20, 20),
        (30, 31),
        (50, 50),
        (60, 63),
        (80, 84),
    ] {
        assert_eq!(
            sched("comfyui:ddim_uniform", n, None, &[]).num_inference_steps,
            actual
        );
        assert_eq!(
            sched("a1111:ddim", n, None, &[]).num_inference_steps,
            actual
        );
    }
}

#[test]
fn invariants_all_names() {
    for tool in TOOLS {
        for name in names(tool).unwrap() {
            for n in [1usize, 2, 3, 7, 20, 33, 100] {
                if tool == "comfyui" && matches!(*name, "kl_optimal" | "laplace") && n == 1 {
                    continue;
                }
                if *name == "sd_turbo" && n > 10 {
                    continue;
                }
                let s = get_schedule(tool, name, n, None, &Options::new(), &Options::new())
                    .unwrap_or_else(|e| panic!("{tool}:{name} {n}: {e}"));
                assert!(s.sigmas.len() >= 2, "{tool}:{name} {n}");
                for w in s.sigmas.windows(2) {
                    assert!(
                        w[0] >= w[1],
                        "{tool}:{name} {n}: not decreasing {:?}",
                        s.sigmas
                    );
                }
                let ends_zero = !matches!(
                    (tool, *name),
                    ("a1111", "kl_optimal") | ("comfyui", "laplace")
                );
                assert_eq!(
                    *s.sigmas.last().unwrap() == 0.0,
                    ends_zero,
                    "{tool}:{name} {n}"
                );
                assert_eq!(s.timesteps.len(), s.sigmas.len() - 1);
                assert!(s.init_noise_sigma > 0.0 && s.init_noise_sigma.is_finite());
            }
        }
    }
}

#[test]
fn errors_name_the_field() {
    let e = |s: &str, n: usize, ov: &[(&str, Value)]| {
        let o: Options = ov.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        get_schedule_by_name(s, n, None, &Options::new(), &o).unwrap_err()
    };
    assert_eq!(e("comfyui:nope", 20, &[]).field(), "scheduler");
    assert_eq!(e("gimp:karras", 20, &[]).field(), "scheduler");
    assert_eq!(e("comfyui:karras", 0, &[]).field(), "num_inference_steps");
    assert_eq!(
        e("comfyui:kl_optimal", 1, &[]).field(),
        "num_inference_steps"
    );
    assert_eq!(
        e("comfyui:karras", 20, &[("rho", Value::Str("x".into()))]).field(),
        "rho"
    );
    assert_eq!(
        e("comfyui:karras", 20, &[("bogus", Value::Int(1))]).field(),
        "bogus"
    );
    assert_eq!(
        e("comfyui:normal", 20, &[("denoise", Value::Float(0.0))]).field(),
        "denoise"
    );
    assert_eq!(
        e(
            "a1111:automatic",
            20,
            &[("sampler", Value::Str("x".into()))]
        )
        .field(),
        "sampler"
    );
    assert_eq!(
        e("comfyui:karras", 20, &[("sigma_max", Value::Float(-1.0))]).field(),
        "sigma_max"
    );
    assert_eq!(
        e("comfyui:simple", 20, &[("start_step", Value::Int(20))]).field(),
        "start_step"
    );
    let p = get_schedule(
        "a1111",
        "karras",
        20,
        Some("sd3"),
        &Options::new(),
        &Options::new(),
    );
    assert_eq!(p.unwrap_err().field(), "preset");
    let q = get_schedule(
        "comfyui",
        "karras",
        20,
        Some("nope"),
        &Options::new(),
        &Options::new(),
    );
    assert_eq!(q.unwrap_err().field(), "preset");
}

#[test]
fn config_keys_are_lenient_overrides_strict() {
    let mut cfg = Options::new();
    cfg.insert("timestep_spacing".into(), Value::Str("leading".into()));
    cfg.insert("beta_end".into(), Value::Float(0.012));
    let s = get_schedule("comfyui", "karras", 20, Some("sd15"), &cfg, &Options::new()).unwrap();
    close(&s.sigmas, &KARRAS20, 1.5e-6);
    assert!(s.config.contains_key("beta_end"));
}
