//! The tools' own names for diffusers schedulers: AUTOMATIC1111's sampler names ("DPM++ 2M
//! Karras", "Euler a", ...) and ComfyUI's sampler/scheduler pairs ("dpmpp_2m karras"), each
//! mapped to the diffusers class and config options that reproduce it where diffusers has an
//! equivalent.
//!
//! The mapping follows diffusers' own table (docs/source/en/api/schedulers/overview.md, "A1111/
//! k-diffusion" and "Noise schedules and schedule types", diffusers 0.42.1) with one deliberate
//! difference: "DPM++ SDE" maps to `DPMSolverSDEScheduler`, the class that implements
//! k-diffusion's `sample_dpmpp_sde` (diffusers' table names `DPMSolverSinglestepScheduler`).
//! A name with no diffusers equivalent (ComfyUI's `ddim_uniform`, A1111's "Polyexponential",
//! "DPM adaptive", ...) is an error that points to the exact ecosystem schedule
//! (`"comfyui:<name>"`, `"a1111:<name>"`).

use std::sync::OnceLock;

use super::classes::SchedulerClass;
use super::config::{ConfigMap, ConfigValue};
use crate::error::{CoreError, Result};
use crate::names::fold;

/// A static option value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum V {
    B(bool),
    S(&'static str),
}

impl V {
    fn value(self) -> ConfigValue {
        match self {
            V::B(b) => ConfigValue::Bool(b),
            V::S(s) => ConfigValue::Str(s.to_owned()),
        }
    }
}

type Options = &'static [(&'static str, V)];

/// A sampler of a tool: its name there, the diffusers class, the options that select the
/// same algorithm.
struct Sampler {
    name: &'static str,
    class: &'static str,
    options: Options,
}

const fn s(name: &'static str, class: &'static str, options: Options) -> Sampler {
    Sampler {
        name,
        class,
        options,
    }
}

const SDE_DPMPP: Options = &[("algorithm_type", V::S("sde-dpmsolver++"))];

/// AUTOMATIC1111 v1.10 sampler labels (`modules/sd_samplers_kdiffusion.py`,
/// `sd_samplers_timesteps.py`, `sd_samplers_lcm.py`).
const A1111_SAMPLERS: &[Sampler] = &[
    s("Euler", "EulerDiscreteScheduler", &[]),
    s("Euler a", "EulerAncestralDiscreteScheduler", &[]),
    s("LMS", "LMSDiscreteScheduler", &[]),
    s("Heun", "HeunDiscreteScheduler", &[]),
    s("DPM2", "KDPM2DiscreteScheduler", &[]),
    s("DPM2 a", "KDPM2AncestralDiscreteScheduler", &[]),
    s("DPM++ 2M", "DPMSolverMultistepScheduler", &[]),
    s("DPM++ 2M SDE", "DPMSolverMultistepScheduler", SDE_DPMPP),
    s("DPM++ SDE", "DPMSolverSDEScheduler", &[]),
    s("DDIM", "DDIMScheduler", &[]),
    s("PLMS", "PNDMScheduler", &[("skip_prk_steps", V::B(true))]),
    // A1111's "UniPC variant" setting defaults to bh1, as ComfyUI's `uni_pc`.
    s(
        "UniPC",
        "UniPCMultistepScheduler",
        &[("solver_type", V::S("bh1"))],
    ),
    s("LCM", "LCMScheduler", &[]),
];

/// A1111's old sampler ids (`k_euler_a`, ...), the names its API still accepts.
const A1111_IDS: &[(&str, &str)] = &[
    ("k_euler", "Euler"),
    ("k_euler_a", "Euler a"),
    ("k_euler_ancestral", "Euler a"),
    ("k_lms", "LMS"),
    ("k_heun", "Heun"),
    ("k_dpm_2", "DPM2"),
    ("k_dpm_2_a", "DPM2 a"),
    ("k_dpmpp_2m", "DPM++ 2M"),
    ("k_dpmpp_sde", "DPM++ SDE"),
];

/// ComfyUI sampler names (`comfy/samplers.py`, `KSAMPLER_NAMES` and `SAMPLER_NAMES`).
const COMFY_SAMPLERS: &[Sampler] = &[
    s("euler", "EulerDiscreteScheduler", &[]),
    s("euler_ancestral", "EulerAncestralDiscreteScheduler", &[]),
    s("heun", "HeunDiscreteScheduler", &[]),
    s("dpm_2", "KDPM2DiscreteScheduler", &[]),
    s("dpm_2_ancestral", "KDPM2AncestralDiscreteScheduler", &[]),
    s("lms", "LMSDiscreteScheduler", &[]),
    s("dpmpp_2m", "DPMSolverMultistepScheduler", &[]),
    s("dpmpp_2m_sde", "DPMSolverMultistepScheduler", SDE_DPMPP),
    s("dpmpp_sde", "DPMSolverSDEScheduler", &[]),
    s("ddim", "DDIMScheduler", &[]),
    s(
        "uni_pc",
        "UniPCMultistepScheduler",
        &[("solver_type", V::S("bh1"))],
    ),
    s("uni_pc_bh2", "UniPCMultistepScheduler", &[]),
    s("deis", "DEISMultistepScheduler", &[]),
    s("lcm", "LCMScheduler", &[]),
];

/// A sigma schedule of a tool and the diffusers options that give it (`None`: no diffusers
/// equivalent; the exact schedule is the ecosystem one).
struct ScheduleType {
    name: &'static str,
    options: Option<Options>,
}

const fn t(name: &'static str, options: Option<Options>) -> ScheduleType {
    ScheduleType { name, options }
}

const KARRAS: Options = &[("use_karras_sigmas", V::B(true))];
const EXPONENTIAL: Options = &[
    ("timestep_spacing", V::S("linspace")),
    ("use_exponential_sigmas", V::B(true)),
];
const BETA: Options = &[
    ("timestep_spacing", V::S("linspace")),
    ("use_beta_sigmas", V::B(true)),
];
const TRAILING: Options = &[("timestep_spacing", V::S("trailing"))];
const LINSPACE: Options = &[("timestep_spacing", V::S("linspace"))];

/// A1111 schedule types (v1.10 `modules/sd_schedulers.py` labels).
const A1111_TYPES: &[ScheduleType] = &[
    t("Automatic", Some(&[])),
    t("Uniform", Some(LINSPACE)),
    t("Karras", Some(KARRAS)),
    t("Exponential", Some(EXPONENTIAL)),
    t("Polyexponential", None),
    t("SGM Uniform", Some(TRAILING)),
    t("KL Optimal", None),
    t("Align Your Steps", None),
    t("Simple", Some(TRAILING)),
    t("Normal", Some(LINSPACE)),
    t("DDIM", None),
    t("Beta", Some(BETA)),
];

/// ComfyUI schedulers (`comfy/samplers.py`, `SCHEDULER_HANDLERS`).
const COMFY_TYPES: &[ScheduleType] = &[
    t("normal", Some(LINSPACE)),
    t("karras", Some(KARRAS)),
    t("exponential", Some(EXPONENTIAL)),
    t("sgm_uniform", Some(TRAILING)),
    t("simple", Some(TRAILING)),
    t("ddim_uniform", None),
    t("beta", Some(BETA)),
    t("linear_quadratic", None),
    t("kl_optimal", None),
];

/// One alias as the catalog lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerAlias {
    /// The name as the tool spells it (`"DPM++ 2M Karras"`, `"dpmpp_2m karras"`).
    pub name: String,
    /// `"a1111"` or `"comfyui"`.
    pub tool: &'static str,
    /// The diffusers class.
    pub scheduler: &'static str,
    /// The config options that select the tool's algorithm and sigmas.
    pub options: ConfigMap,
}

/// Every alias with a diffusers equivalent: each sampler alone, and with each schedule type
/// whose options its class accepts.
pub fn list() -> &'static [SchedulerAlias] {
    static ALL: OnceLock<Vec<SchedulerAlias>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = Vec::new();
        for (tool, samplers, types, sep) in [
            ("a1111", A1111_SAMPLERS, A1111_TYPES, " "),
            ("comfyui", COMFY_SAMPLERS, COMFY_TYPES, " "),
        ] {
            for sampler in samplers {
                all.push(alias(tool, sampler.name.to_owned(), sampler, &[]));
                for kind in types {
                    let Some(options) = kind.options else {
                        continue;
                    };
                    if options.is_empty() || !accepts(sampler.class, options) {
                        continue;
                    }
                    let name = format!("{}{sep}{}", sampler.name, kind.name);
                    all.push(alias(tool, name, sampler, options));
                }
            }
        }
        all
    })
}

fn alias(tool: &'static str, name: String, sampler: &Sampler, extra: Options) -> SchedulerAlias {
    let mut options = ConfigMap::new();
    for &(key, value) in sampler.options.iter().chain(extra) {
        options.insert(key, value.value());
    }
    SchedulerAlias {
        name,
        tool,
        scheduler: sampler.class,
        options,
    }
}

/// Whether the class declares every option key.
fn accepts(class: &str, options: Options) -> bool {
    SchedulerClass::from_name(class).is_some_and(|c| {
        options
            .iter()
            .all(|(k, _)| c.keys().iter().any(|s| s.name == *k))
    })
}

/// The alias `name` (case-, space- and separator-insensitive), if it is one: the tool's sampler
/// name, optionally followed by a schedule type. `Err` when it names a sampler with a schedule
/// type diffusers has no equivalent for.
pub fn find(name: &str) -> Result<Option<&'static SchedulerAlias>> {
    // ComfyUI pairs are also written "sampler/scheduler" or "sampler, scheduler".
    let key = fold(&name.replace(['/', ','], " "));
    if key.is_empty() {
        return Ok(None);
    }
    let by_id = A1111_IDS
        .iter()
        .find(|(id, _)| fold(id) == key)
        .map(|(_, label)| fold(label));
    let key = by_id.unwrap_or(key);
    if let Some(found) = list().iter().find(|a| fold(&a.name) == key) {
        return Ok(Some(found));
    }
    for (tool, samplers, types) in [
        ("a1111", A1111_SAMPLERS, A1111_TYPES),
        ("comfyui", COMFY_SAMPLERS, COMFY_TYPES),
    ] {
        for sampler in samplers {
            let Some(rest) = key.strip_prefix(&fold(sampler.name)) else {
                continue;
            };
            let Some(kind) = types.iter().find(|t| fold(t.name) == rest) else {
                continue;
            };
            if kind.options.is_some_and(<[_]>::is_empty) {
                return Ok(list()
                    .iter()
                    .find(|a| a.tool == tool && a.name == sampler.name));
            }
            let ecosystem = format!(
                "{tool}:{}",
                kind.name.to_ascii_lowercase().replace(' ', "_")
            );
            let why = match kind.options {
                None => format!(
                    "diffusers has no equivalent of the {tool} schedule {:?}",
                    kind.name
                ),
                Some(_) => format!(
                    "{} has no option for the {tool} schedule {:?}",
                    sampler.class, kind.name
                ),
            };
            return Err(CoreError::invalid(
                "scheduler",
                format!("{name:?}: {why}; the exact schedule is {ecosystem:?}"),
            ));
        }
    }
    Ok(None)
}

/// The alias names, for suggestions.
pub fn names() -> Vec<&'static str> {
    list().iter().map(|a| a.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(name: &str) -> &'static SchedulerAlias {
        find(name).expect("valid").expect("an alias")
    }

    #[test]
    fn a1111_names_map_to_diffusers_classes() {
        let a = get("DPM++ 2M Karras");
        assert_eq!(a.scheduler, "DPMSolverMultistepScheduler");
        assert_eq!(
            a.options.get("use_karras_sigmas"),
            Some(&ConfigValue::Bool(true))
        );
        assert_eq!(get("euler A").scheduler, "EulerAncestralDiscreteScheduler");
        assert_eq!(
            get("k_euler_a").scheduler,
            "EulerAncestralDiscreteScheduler"
        );
        let sde = get("DPM++ 2M SDE Karras");
        assert_eq!(
            sde.options.get("algorithm_type"),
            Some(&ConfigValue::Str("sde-dpmsolver++".into()))
        );
    }

    #[test]
    fn comfyui_pairs_map_to_diffusers_classes() {
        let a = get("dpmpp_2m karras");
        assert_eq!(
            (a.tool, a.scheduler),
            ("comfyui", "DPMSolverMultistepScheduler")
        );
        assert_eq!(get("Euler Automatic").name, "Euler");
        let b = get("dpmpp_2m_sde/exponential");
        assert_eq!(b.scheduler, "DPMSolverMultistepScheduler");
        assert_eq!(
            b.options.get("use_exponential_sigmas"),
            Some(&ConfigValue::Bool(true))
        );
        assert_eq!(
            get("uni_pc").options.get("solver_type"),
            Some(&ConfigValue::Str("bh1".into()))
        );
    }

    #[test]
    fn schedules_without_equivalent_point_to_the_ecosystem() {
        let err = find("dpmpp_2m ddim_uniform").expect_err("no equivalent");
        assert!(err.to_string().contains("comfyui:ddim_uniform"), "{err}");
        let err = find("DDIM Karras").expect_err("DDIM has no Karras option");
        assert!(err.to_string().contains("a1111:karras"), "{err}");
        assert_eq!(find("EulerDiscreteScheduler").expect("ok"), None);
    }

    #[test]
    fn every_alias_names_a_supported_class_and_its_keys() {
        for a in list() {
            let class = SchedulerClass::from_name(a.scheduler).expect(a.scheduler);
            for (key, _) in a.options.iter() {
                assert!(
                    class.keys().iter().any(|k| k.name == key),
                    "{} {key}",
                    a.name
                );
            }
        }
    }
}
