//! What the scheduler catalog says about each diffusers class: its family, and the exported
//! classes sigmaserve deliberately does not reproduce, with the reason.
//!
//! The family vocabulary is small on purpose. It names the space a schedule lives in, which is
//! also what decides the models it fits:
//!
//! | family        | schedule                                                                  | models                         |
//! |---------------|---------------------------------------------------------------------------|--------------------------------|
//! | `alpha`       | DDPM/DDIM style: timesteps that index (or parameterise) the signal level ᾱ_t, no sigma array to scale latents by | VP (DDPM-trained) models |
//! | `sigma`       | k-diffusion style: sigmas interpolated from the training sigmas, latents scaled by `init_noise_sigma` | VP models |
//! | `multistep`   | DPM-Solver family: integer timesteps with VP sigmas for λ-space solvers    | VP models (some also flow)     |
//! | `flow_match`  | rectified flow: σ in [0, 1], `t = σ·N` (or its complement), no latent scaling | flow-matching models        |
//! | `edm`         | σ-parameterised (EDM / variance-exploding) schedules between `sigma_min` and `sigma_max` | EDM and VE models |
//! | `consistency` | few-step samplers of consistency(-distilled) models                        | LCM/TCD (VP), CM (EDM), sCM (TrigFlow), the consistency decoder |

use super::classes::SchedulerClass;

/// A scheduler family (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `alpha`: DDPM/DDIM style.
    Alpha,
    /// `sigma`: k-diffusion style.
    Sigma,
    /// `multistep`: the DPM-Solver family.
    Multistep,
    /// `flow_match`: rectified flow.
    FlowMatch,
    /// `edm`: EDM and variance-exploding sigmas.
    Edm,
    /// `consistency`: consistency-model samplers.
    Consistency,
}

impl Family {
    /// Every family, in the order of the module table.
    pub const ALL: [Family; 6] = [
        Family::Alpha,
        Family::Sigma,
        Family::Multistep,
        Family::FlowMatch,
        Family::Edm,
        Family::Consistency,
    ];

    /// The catalog name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Alpha => "alpha",
            Family::Sigma => "sigma",
            Family::Multistep => "multistep",
            Family::FlowMatch => "flow_match",
            Family::Edm => "edm",
            Family::Consistency => "consistency",
        }
    }

    /// One line for the catalog.
    pub fn description(self) -> &'static str {
        match self {
            Family::Alpha => {
                "DDPM/DDIM style: timesteps index (or parameterise) the signal level alpha_bar_t \
                 of a VP model; no sigma array, latents not scaled"
            }
            Family::Sigma => {
                "k-diffusion style: sigmas interpolated from a VP model's training sigmas; latents \
                 scaled by init_noise_sigma"
            }
            Family::Multistep => {
                "DPM-Solver family: integer timesteps with VP sigmas for lambda-space multistep \
                 solvers (optionally flow sigmas)"
            }
            Family::FlowMatch => {
                "rectified flow: sigmas in [0, 1] with timesteps sigma * num_train_timesteps; \
                 latents not scaled"
            }
            Family::Edm => {
                "sigma-parameterised (EDM / variance-exploding) schedules between sigma_min and \
                 sigma_max, no training betas"
            }
            Family::Consistency => {
                "few-step samplers of consistency(-distilled) models (LCM/TCD on VP models, CM on \
                 EDM, sCM on TrigFlow, the consistency decoder)"
            }
        }
    }
}

impl SchedulerClass {
    /// The family of the class.
    pub(crate) fn family(self) -> Family {
        use Family as F;
        use SchedulerClass as C;
        match self {
            C::Ddpm
            | C::Ddim
            | C::Pndm
            | C::CogVideoXDdim
            | C::CogVideoXDpm
            | C::DdimInverse
            | C::DdimParallel
            | C::DdpmParallel
            | C::DdpmWuerstchen
            | C::Ipndm
            | C::RePaint
            | C::ScoreSdeVp
            | C::UnClip => F::Alpha,
            C::Lms
            | C::Euler
            | C::EulerAncestral
            | C::Heun
            | C::Kdpm2
            | C::Kdpm2Ancestral
            | C::DpmSde => F::Sigma,
            C::DpmMultistep
            | C::DpmSinglestep
            | C::DpmMultistepInverse
            | C::UniPc
            | C::Deis
            | C::SaSolver => F::Multistep,
            C::FlowMatchEuler
            | C::FlowMatchHeun
            | C::FlowMatchLcm
            | C::FlowMapEuler
            | C::Helios
            | C::HeliosDmd
            | C::LtxEulerAncestralRf
            | C::MiniMaxH3
            | C::Piflow
            | C::Rfd4Proteina => F::FlowMatch,
            C::EdmEuler | C::EdmDpm | C::CosineDpm | C::KarrasVe | C::ScoreSdeVe => F::Edm,
            C::Lcm | C::Tcd | C::CmStochasticIterative | C::Scm | C::ConsistencyDecoder => {
                F::Consistency
            }
        }
    }
}

/// Scheduler classes diffusers 0.42.1 exports (`diffusers.schedulers`) that sigmaserve does not
/// reproduce, with the reason. Together with [`SchedulerClass::ALL`] this accounts for every
/// exported scheduler class.
pub(crate) const EXCLUDED: [(&str, &str); 5] = [
    (
        "AmusedScheduler",
        "masked-token generation over discrete VQ codes (aMUSEd/MUSE): set_timesteps gives step \
         indices and sampling temperatures, no noise schedule for continuous latents",
    ),
    (
        "BlockRefinementScheduler",
        "discrete text-token diffusion (LLaDA2 block refinement): set_timesteps gives step \
         indices and a token-commit schedule, no noise schedule for continuous latents",
    ),
    (
        "DiscreteDDIMScheduler",
        "discrete-token diffusion (uniform-noise DDIM over a vocabulary): set_timesteps gives \
         step indices only, no noise schedule for continuous latents",
    ),
    (
        "EntropyBoundScheduler",
        "discrete text-token diffusion (entropy-bounded unmasking): set_timesteps gives step \
         indices only, no noise schedule for continuous latents",
    ),
    (
        "VQDiffusionScheduler",
        "discrete VQ-token diffusion with transition matrices over codebook indices: no noise \
         schedule for continuous latents",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_used_and_names_are_unique() {
        for family in Family::ALL {
            assert!(
                SchedulerClass::ALL.iter().any(|c| c.family() == family),
                "{} unused",
                family.name()
            );
        }
        let mut names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        names.dedup();
        assert_eq!(names.len(), Family::ALL.len());
    }

    #[test]
    fn excluded_classes_are_not_supported_ones() {
        for (name, reason) in EXCLUDED {
            assert!(SchedulerClass::from_name(name).is_none());
            assert!(!reason.is_empty());
            let err = super::super::resolve_target(&name.to_lowercase()).expect_err(name);
            assert!(err.to_string().contains(reason), "{err}");
        }
    }
}
