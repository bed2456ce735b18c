//! The diffusers scheduler classes sigmaserve reproduces: their names, their `__init__` keys with
//! defaults (diffusers 0.42.1 signatures), and the type/value rule of each key.

use super::config::ConfigValue;

/// Largest `num_train_timesteps` and `num_inference_steps` accepted (bounds memory per request).
pub(crate) const MAX_STEPS: i64 = 1_000_000;

/// One diffusers scheduler class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SchedulerClass {
    Ddpm,
    Ddim,
    Pndm,
    Lms,
    Euler,
    EulerAncestral,
    Heun,
    Kdpm2,
    Kdpm2Ancestral,
    DpmMultistep,
    DpmSinglestep,
    DpmSde,
    UniPc,
    Deis,
    SaSolver,
    Lcm,
    Tcd,
    EdmEuler,
    EdmDpm,
    FlowMatchEuler,
    FlowMatchHeun,
    // Added for issue 14 (every diffusers 0.42.1 class with a continuous schedule).
    CmStochasticIterative,
    CogVideoXDdim,
    CogVideoXDpm,
    ConsistencyDecoder,
    CosineDpm,
    DdimInverse,
    DdimParallel,
    DdpmParallel,
    DdpmWuerstchen,
    DpmMultistepInverse,
    FlowMapEuler,
    FlowMatchLcm,
    Helios,
    HeliosDmd,
    Ipndm,
    KarrasVe,
    LtxEulerAncestralRf,
    MiniMaxH3,
    Piflow,
    RePaint,
    Rfd4Proteina,
    Scm,
    ScoreSdeVe,
    ScoreSdeVp,
    UnClip,
}

impl SchedulerClass {
    /// Every class: the first 21 in the order of the issue that listed them, then the classes
    /// added for issue 14 in alphabetical order.
    pub(crate) const ALL: [SchedulerClass; 46] = [
        Self::Ddpm,
        Self::Ddim,
        Self::Pndm,
        Self::Lms,
        Self::Euler,
        Self::EulerAncestral,
        Self::Heun,
        Self::Kdpm2,
        Self::Kdpm2Ancestral,
        Self::DpmMultistep,
        Self::DpmSinglestep,
        Self::DpmSde,
        Self::UniPc,
        Self::Deis,
        Self::SaSolver,
        Self::Lcm,
        Self::Tcd,
        Self::EdmEuler,
        Self::EdmDpm,
        Self::FlowMatchEuler,
        Self::FlowMatchHeun,
        Self::CmStochasticIterative,
        Self::CogVideoXDdim,
        Self::CogVideoXDpm,
        Self::ConsistencyDecoder,
        Self::CosineDpm,
        Self::DdimInverse,
        Self::DdimParallel,
        Self::DdpmParallel,
        Self::DdpmWuerstchen,
        Self::DpmMultistepInverse,
        Self::FlowMapEuler,
        Self::FlowMatchLcm,
        Self::Helios,
        Self::HeliosDmd,
        Self::Ipndm,
        Self::KarrasVe,
        Self::LtxEulerAncestralRf,
        Self::MiniMaxH3,
        Self::Piflow,
        Self::RePaint,
        Self::Rfd4Proteina,
        Self::Scm,
        Self::ScoreSdeVe,
        Self::ScoreSdeVp,
        Self::UnClip,
    ];

    /// The diffusers class name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ddpm => "DDPMScheduler",
            Self::Ddim => "DDIMScheduler",
            Self::Pndm => "PNDMScheduler",
            Self::Lms => "LMSDiscreteScheduler",
            Self::Euler => "EulerDiscreteScheduler",
            Self::EulerAncestral => "EulerAncestralDiscreteScheduler",
            Self::Heun => "HeunDiscreteScheduler",
            Self::Kdpm2 => "KDPM2DiscreteScheduler",
            Self::Kdpm2Ancestral => "KDPM2AncestralDiscreteScheduler",
            Self::DpmMultistep => "DPMSolverMultistepScheduler",
            Self::DpmSinglestep => "DPMSolverSinglestepScheduler",
            Self::DpmSde => "DPMSolverSDEScheduler",
            Self::UniPc => "UniPCMultistepScheduler",
            Self::Deis => "DEISMultistepScheduler",
            Self::SaSolver => "SASolverScheduler",
            Self::Lcm => "LCMScheduler",
            Self::Tcd => "TCDScheduler",
            Self::EdmEuler => "EDMEulerScheduler",
            Self::EdmDpm => "EDMDPMSolverMultistepScheduler",
            Self::FlowMatchEuler => "FlowMatchEulerDiscreteScheduler",
            Self::FlowMatchHeun => "FlowMatchHeunDiscreteScheduler",
            Self::CmStochasticIterative => "CMStochasticIterativeScheduler",
            Self::CogVideoXDdim => "CogVideoXDDIMScheduler",
            Self::CogVideoXDpm => "CogVideoXDPMScheduler",
            Self::ConsistencyDecoder => "ConsistencyDecoderScheduler",
            Self::CosineDpm => "CosineDPMSolverMultistepScheduler",
            Self::DdimInverse => "DDIMInverseScheduler",
            Self::DdimParallel => "DDIMParallelScheduler",
            Self::DdpmParallel => "DDPMParallelScheduler",
            Self::DdpmWuerstchen => "DDPMWuerstchenScheduler",
            Self::DpmMultistepInverse => "DPMSolverMultistepInverseScheduler",
            Self::FlowMapEuler => "FlowMapEulerDiscreteScheduler",
            Self::FlowMatchLcm => "FlowMatchLCMScheduler",
            Self::Helios => "HeliosScheduler",
            Self::HeliosDmd => "HeliosDMDScheduler",
            Self::Ipndm => "IPNDMScheduler",
            Self::KarrasVe => "KarrasVeScheduler",
            Self::LtxEulerAncestralRf => "LTXEulerAncestralRFScheduler",
            Self::MiniMaxH3 => "MiniMaxH3Scheduler",
            Self::Piflow => "PiflowScheduler",
            Self::RePaint => "RePaintScheduler",
            Self::Rfd4Proteina => "RFD4ProteinaScheduler",
            Self::Scm => "SCMScheduler",
            Self::ScoreSdeVe => "ScoreSdeVeScheduler",
            Self::ScoreSdeVp => "ScoreSdeVpScheduler",
            Self::UnClip => "UnCLIPScheduler",
        }
    }

    /// The class with this exact (case-sensitive) diffusers name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The `__init__` keys of the class, in signature order.
    pub(crate) fn keys(self) -> &'static [KeySpec] {
        match self {
            Self::Ddpm | Self::DdpmParallel => DDPM,
            Self::Ddim | Self::DdimParallel => DDIM,
            Self::Pndm => PNDM,
            Self::Lms => LMS,
            Self::Euler => EULER,
            Self::EulerAncestral => EULER_ANCESTRAL,
            Self::Heun => HEUN,
            Self::Kdpm2 | Self::Kdpm2Ancestral => KDPM2,
            Self::DpmMultistep => DPM_MULTISTEP,
            Self::DpmSinglestep => DPM_SINGLESTEP,
            Self::DpmSde => DPM_SDE,
            Self::UniPc => UNIPC,
            Self::Deis => DEIS,
            Self::SaSolver => SA_SOLVER,
            Self::Lcm | Self::Tcd => LCM,
            Self::EdmEuler => EDM_EULER,
            Self::EdmDpm => EDM_DPM,
            Self::FlowMatchEuler => FLOW_MATCH_EULER,
            Self::FlowMatchHeun => FLOW_MATCH_HEUN,
            Self::CmStochasticIterative => CM_STOCHASTIC_ITERATIVE,
            Self::CogVideoXDdim | Self::CogVideoXDpm => COGVIDEOX,
            Self::ConsistencyDecoder => CONSISTENCY_DECODER,
            Self::CosineDpm => COSINE_DPM,
            Self::DdimInverse => DDIM_INVERSE,
            Self::DdpmWuerstchen => DDPM_WUERSTCHEN,
            Self::DpmMultistepInverse => DPM_MULTISTEP_INVERSE,
            Self::FlowMapEuler => FLOW_MAP_EULER,
            Self::FlowMatchLcm => FLOW_MATCH_LCM,
            Self::Helios => HELIOS,
            Self::HeliosDmd => HELIOS_DMD,
            Self::Ipndm => IPNDM,
            Self::KarrasVe => KARRAS_VE,
            Self::LtxEulerAncestralRf => LTX_EULER_ANCESTRAL_RF,
            Self::MiniMaxH3 => MINIMAX_H3,
            Self::Piflow => PIFLOW,
            Self::RePaint => REPAINT,
            Self::Rfd4Proteina => RFD4_PROTEINA,
            Self::Scm => SCM,
            Self::ScoreSdeVe => SCORE_SDE_VE,
            Self::ScoreSdeVp => SCORE_SDE_VP,
            Self::UnClip => UNCLIP,
        }
    }

    /// Whether any class declares `key` (used to tell "another scheduler's option" from a typo).
    pub(crate) fn any_declares(key: &str) -> bool {
        Self::ALL
            .into_iter()
            .any(|c| c.keys().iter().any(|k| k.name == key))
    }
}

/// A default value of a configuration key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Def {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'static str),
    EmptyIntList,
    FloatList(&'static [f64]),
    /// The upstream `__init__` has no default: a configuration must give the key.
    Required,
}

impl Def {
    pub(crate) fn value(self) -> ConfigValue {
        match self {
            Def::Null => ConfigValue::Null,
            Def::Bool(b) => ConfigValue::Bool(b),
            Def::Int(i) => ConfigValue::Int(i),
            Def::Float(f) => ConfigValue::Float(f),
            Def::Str(s) => ConfigValue::Str(s.to_owned()),
            Def::EmptyIntList => ConfigValue::IntList(Vec::new()),
            Def::FloatList(v) => ConfigValue::FloatList(v.to_vec()),
            Def::Required => ConfigValue::Null,
        }
    }
}

/// The type and value rule of a key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// An integer in `[min, max]`.
    Int {
        min: i64,
        max: i64,
    },
    /// A finite float in `[min, max]`.
    Float {
        min: f64,
        max: f64,
    },
    /// Any finite float.
    Finite,
    /// A finite float `> 0`.
    Positive,
    /// `None` or a finite float `> 0`.
    OptPositive,
    /// `None` or a finite float `< 1` (`shift_terminal`).
    OptBelowOne,
    /// A finite float or `-inf` (`lambda_min_clipped`).
    FloatOrNegInf,
    Bool,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// `None` or one of the listed strings.
    OptChoice(&'static [&'static str]),
    /// Any string.
    Text,
    /// `None` or any string.
    OptText,
    /// `None` or an integer.
    OptInt,
    /// `None` or a list of betas in `[0, 1]`.
    Betas,
    /// A list of integers.
    IntList,
    /// A list of finite floats.
    FloatList,
    /// `None` or a list of finite floats.
    OptFloatList,
    /// Must be `None` (a Python object such as a callable cannot travel as configuration).
    NullOnly,
}

/// One configuration key of a class.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySpec {
    pub(crate) name: &'static str,
    pub(crate) default: Def,
    pub(crate) kind: Kind,
}

const fn key(name: &'static str, default: Def, kind: Kind) -> KeySpec {
    KeySpec {
        name,
        default,
        kind,
    }
}

const VP3: &[&str] = &["linear", "scaled_linear", "squaredcos_cap_v2"];
const SPACINGS: &[&str] = &["linspace", "leading", "trailing"];
const PREDICTIONS: &[&str] = &["epsilon", "sample", "v_prediction", "flow_prediction"];
const FINALS: &[&str] = &["zero", "sigma_min"];
const SOLVER_TYPES: &[&str] = &["midpoint", "heun", "logrho", "bh1", "bh2"];
const SHIFT_TYPES: &[&str] = &["exponential"];

const STEPS_RANGE: Kind = Kind::Int {
    min: 2,
    max: MAX_STEPS,
};
const OFFSET_RANGE: Kind = Kind::Int {
    min: 0,
    max: MAX_STEPS,
};
const ORDER_RANGE: Kind = Kind::Int { min: 1, max: 16 };
const BETA_RANGE: Kind = Kind::Float { min: 0.0, max: 1.0 };
const RATIO_RANGE: Kind = Kind::Float { min: 0.0, max: 1.0 };

const NTT: KeySpec = key("num_train_timesteps", Def::Int(1000), STEPS_RANGE);
const BETA_START: KeySpec = key("beta_start", Def::Float(0.0001), BETA_RANGE);
const BETA_END: KeySpec = key("beta_end", Def::Float(0.02), BETA_RANGE);
const SD_BETA_START: KeySpec = key("beta_start", Def::Float(0.00085), BETA_RANGE);
const SD_BETA_END: KeySpec = key("beta_end", Def::Float(0.012), BETA_RANGE);
const BETA_SCHEDULE: KeySpec = key("beta_schedule", Def::Str("linear"), Kind::Choice(VP3));
const TRAINED_BETAS: KeySpec = key("trained_betas", Def::Null, Kind::Betas);
const PREDICTION: KeySpec = key(
    "prediction_type",
    Def::Str("epsilon"),
    Kind::Choice(PREDICTIONS),
);
const THRESHOLDING: KeySpec = key("thresholding", Def::Bool(false), Kind::Bool);
const DTR: KeySpec = key("dynamic_thresholding_ratio", Def::Float(0.995), RATIO_RANGE);
const SAMPLE_MAX: KeySpec = key("sample_max_value", Def::Float(1.0), Kind::Positive);
const CLIP_RANGE: KeySpec = key("clip_sample_range", Def::Float(1.0), Kind::Positive);
const SPACING_LINSPACE: KeySpec = key(
    "timestep_spacing",
    Def::Str("linspace"),
    Kind::Choice(SPACINGS),
);
const SPACING_LEADING: KeySpec = key(
    "timestep_spacing",
    Def::Str("leading"),
    Kind::Choice(SPACINGS),
);
const STEPS_OFFSET: KeySpec = key("steps_offset", Def::Int(0), OFFSET_RANGE);
const ZERO_SNR: KeySpec = key("rescale_betas_zero_snr", Def::Bool(false), Kind::Bool);
const KARRAS: KeySpec = key("use_karras_sigmas", Def::Bool(false), Kind::Bool);
const EXPONENTIAL: KeySpec = key("use_exponential_sigmas", Def::Bool(false), Kind::Bool);
const BETA_SIGMAS: KeySpec = key("use_beta_sigmas", Def::Bool(false), Kind::Bool);
const FLOW_SIGMAS: KeySpec = key("use_flow_sigmas", Def::Bool(false), Kind::Bool);
const FLOW_SHIFT: KeySpec = key("flow_shift", Def::Float(1.0), Kind::Positive);
const FINAL_SIGMAS: KeySpec = key("final_sigmas_type", Def::Str("zero"), Kind::Choice(FINALS));
const LAMBDA_MIN: KeySpec = key(
    "lambda_min_clipped",
    Def::Float(f64::NEG_INFINITY),
    Kind::FloatOrNegInf,
);
const SOLVER_ORDER: KeySpec = key("solver_order", Def::Int(2), ORDER_RANGE);
const LOWER_ORDER_FINAL: KeySpec = key("lower_order_final", Def::Bool(true), Kind::Bool);
const DYNAMIC_SHIFTING: KeySpec = key("use_dynamic_shifting", Def::Bool(false), Kind::Bool);
const SHIFT_TYPE: KeySpec = key(
    "time_shift_type",
    Def::Str("exponential"),
    Kind::Choice(SHIFT_TYPES),
);
const DPM_VARIANCE: KeySpec = key(
    "variance_type",
    Def::Null,
    Kind::OptChoice(&["learned", "learned_range"]),
);
const OPT_SIGMA_MIN: KeySpec = key("sigma_min", Def::Null, Kind::OptPositive);
const OPT_SIGMA_MAX: KeySpec = key("sigma_max", Def::Null, Kind::OptPositive);

const DDPM: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    key(
        "beta_schedule",
        Def::Str("linear"),
        Kind::Choice(&[
            "linear",
            "scaled_linear",
            "squaredcos_cap_v2",
            "sigmoid",
            "laplace",
        ]),
    ),
    TRAINED_BETAS,
    key(
        "variance_type",
        Def::Str("fixed_small"),
        Kind::Choice(&[
            "fixed_small",
            "fixed_small_log",
            "fixed_large",
            "fixed_large_log",
            "learned",
            "learned_range",
        ]),
    ),
    key("clip_sample", Def::Bool(true), Kind::Bool),
    PREDICTION,
    THRESHOLDING,
    DTR,
    CLIP_RANGE,
    SAMPLE_MAX,
    SPACING_LEADING,
    STEPS_OFFSET,
    ZERO_SNR,
];

const DDIM: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    key("clip_sample", Def::Bool(true), Kind::Bool),
    key("set_alpha_to_one", Def::Bool(true), Kind::Bool),
    STEPS_OFFSET,
    PREDICTION,
    THRESHOLDING,
    DTR,
    CLIP_RANGE,
    SAMPLE_MAX,
    SPACING_LEADING,
    ZERO_SNR,
];

const PNDM: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    key("skip_prk_steps", Def::Bool(false), Kind::Bool),
    key("set_alpha_to_one", Def::Bool(false), Kind::Bool),
    PREDICTION,
    SPACING_LEADING,
    STEPS_OFFSET,
];

const LMS: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    PREDICTION,
    SPACING_LINSPACE,
    STEPS_OFFSET,
];

const EULER: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    PREDICTION,
    key(
        "interpolation_type",
        Def::Str("linear"),
        Kind::Choice(&["linear", "log_linear"]),
    ),
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    OPT_SIGMA_MIN,
    OPT_SIGMA_MAX,
    SPACING_LINSPACE,
    key(
        "timestep_type",
        Def::Str("discrete"),
        Kind::Choice(&["discrete", "continuous"]),
    ),
    STEPS_OFFSET,
    ZERO_SNR,
    FINAL_SIGMAS,
];

const EULER_ANCESTRAL: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    PREDICTION,
    SPACING_LINSPACE,
    STEPS_OFFSET,
    ZERO_SNR,
];

const HEUN: &[KeySpec] = &[
    NTT,
    SD_BETA_START,
    SD_BETA_END,
    key(
        "beta_schedule",
        Def::Str("linear"),
        Kind::Choice(&["linear", "scaled_linear", "squaredcos_cap_v2", "exp"]),
    ),
    TRAINED_BETAS,
    PREDICTION,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    key("clip_sample", Def::Bool(false), Kind::Bool),
    CLIP_RANGE,
    SPACING_LINSPACE,
    STEPS_OFFSET,
];

const KDPM2: &[KeySpec] = &[
    NTT,
    SD_BETA_START,
    SD_BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    PREDICTION,
    SPACING_LINSPACE,
    STEPS_OFFSET,
];

const DPM_MULTISTEP: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    SOLVER_ORDER,
    PREDICTION,
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key(
        "algorithm_type",
        Def::Str("dpmsolver++"),
        Kind::Choice(&[
            "dpmsolver",
            "dpmsolver++",
            "sde-dpmsolver",
            "sde-dpmsolver++",
            "deis",
        ]),
    ),
    key(
        "solver_type",
        Def::Str("midpoint"),
        Kind::Choice(SOLVER_TYPES),
    ),
    LOWER_ORDER_FINAL,
    key("euler_at_final", Def::Bool(false), Kind::Bool),
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    key("use_lu_lambdas", Def::Bool(false), Kind::Bool),
    FLOW_SIGMAS,
    FLOW_SHIFT,
    FINAL_SIGMAS,
    LAMBDA_MIN,
    DPM_VARIANCE,
    SPACING_LINSPACE,
    STEPS_OFFSET,
    ZERO_SNR,
    DYNAMIC_SHIFTING,
    SHIFT_TYPE,
];

const DPM_SINGLESTEP: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    key("solver_order", Def::Int(2), Kind::Int { min: 1, max: 3 }),
    PREDICTION,
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key(
        "algorithm_type",
        Def::Str("dpmsolver++"),
        Kind::Choice(&["dpmsolver", "dpmsolver++", "sde-dpmsolver++", "deis"]),
    ),
    key(
        "solver_type",
        Def::Str("midpoint"),
        Kind::Choice(SOLVER_TYPES),
    ),
    key("lower_order_final", Def::Bool(false), Kind::Bool),
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SIGMAS,
    FLOW_SHIFT,
    FINAL_SIGMAS,
    LAMBDA_MIN,
    DPM_VARIANCE,
    DYNAMIC_SHIFTING,
    SHIFT_TYPE,
];

const DPM_SDE: &[KeySpec] = &[
    NTT,
    SD_BETA_START,
    SD_BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    PREDICTION,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    key("noise_sampler_seed", Def::Null, Kind::OptInt),
    SPACING_LINSPACE,
    STEPS_OFFSET,
];

const UNIPC: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    SOLVER_ORDER,
    PREDICTION,
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key("predict_x0", Def::Bool(true), Kind::Bool),
    key("solver_type", Def::Str("bh2"), Kind::Choice(SOLVER_TYPES)),
    LOWER_ORDER_FINAL,
    key("disable_corrector", Def::EmptyIntList, Kind::IntList),
    key("solver_p", Def::Null, Kind::NullOnly),
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SIGMAS,
    FLOW_SHIFT,
    SPACING_LINSPACE,
    STEPS_OFFSET,
    FINAL_SIGMAS,
    ZERO_SNR,
    DYNAMIC_SHIFTING,
    key(
        "time_shift_type",
        Def::Str("exponential"),
        Kind::Choice(&["exponential", "linear"]),
    ),
    OPT_SIGMA_MIN,
    OPT_SIGMA_MAX,
    key("shift_terminal", Def::Null, Kind::OptBelowOne),
];

const DEIS: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    SOLVER_ORDER,
    PREDICTION,
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key(
        "algorithm_type",
        Def::Str("deis"),
        Kind::Choice(&["deis", "dpmsolver", "dpmsolver++"]),
    ),
    key(
        "solver_type",
        Def::Str("logrho"),
        Kind::Choice(SOLVER_TYPES),
    ),
    LOWER_ORDER_FINAL,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SIGMAS,
    FLOW_SHIFT,
    SPACING_LINSPACE,
    STEPS_OFFSET,
    DYNAMIC_SHIFTING,
    SHIFT_TYPE,
];

const SA_SOLVER: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    key("predictor_order", Def::Int(2), ORDER_RANGE),
    key("corrector_order", Def::Int(2), ORDER_RANGE),
    PREDICTION,
    key("tau_func", Def::Null, Kind::NullOnly),
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key(
        "algorithm_type",
        Def::Str("data_prediction"),
        Kind::Choice(&["data_prediction", "noise_prediction"]),
    ),
    LOWER_ORDER_FINAL,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SIGMAS,
    FLOW_SHIFT,
    LAMBDA_MIN,
    key("variance_type", Def::Null, Kind::OptText),
    SPACING_LINSPACE,
    STEPS_OFFSET,
];

const LCM: &[KeySpec] = &[
    NTT,
    SD_BETA_START,
    SD_BETA_END,
    key(
        "beta_schedule",
        Def::Str("scaled_linear"),
        Kind::Choice(VP3),
    ),
    TRAINED_BETAS,
    key(
        "original_inference_steps",
        Def::Int(50),
        Kind::Int {
            min: 1,
            max: MAX_STEPS,
        },
    ),
    key("clip_sample", Def::Bool(false), Kind::Bool),
    CLIP_RANGE,
    key("set_alpha_to_one", Def::Bool(true), Kind::Bool),
    STEPS_OFFSET,
    PREDICTION,
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key("timestep_spacing", Def::Str("leading"), Kind::Text),
    key("timestep_scaling", Def::Float(10.0), Kind::Positive),
    ZERO_SNR,
];

const EDM_SIGMA_MIN: KeySpec = key("sigma_min", Def::Float(0.002), Kind::Positive);
const EDM_SIGMA_MAX: KeySpec = key("sigma_max", Def::Float(80.0), Kind::Positive);
const EDM_SIGMA_DATA: KeySpec = key("sigma_data", Def::Float(0.5), Kind::Positive);
const EDM_SCHEDULE: KeySpec = key(
    "sigma_schedule",
    Def::Str("karras"),
    Kind::Choice(&["karras", "exponential"]),
);
const EDM_RHO: KeySpec = key("rho", Def::Float(7.0), Kind::Positive);

const EDM_EULER: &[KeySpec] = &[
    EDM_SIGMA_MIN,
    EDM_SIGMA_MAX,
    EDM_SIGMA_DATA,
    EDM_SCHEDULE,
    NTT,
    PREDICTION,
    EDM_RHO,
    FINAL_SIGMAS,
];

const EDM_DPM: &[KeySpec] = &[
    EDM_SIGMA_MIN,
    EDM_SIGMA_MAX,
    EDM_SIGMA_DATA,
    EDM_SCHEDULE,
    NTT,
    PREDICTION,
    EDM_RHO,
    SOLVER_ORDER,
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key(
        "algorithm_type",
        Def::Str("dpmsolver++"),
        Kind::Choice(&["dpmsolver++", "sde-dpmsolver++", "deis"]),
    ),
    key(
        "solver_type",
        Def::Str("midpoint"),
        Kind::Choice(SOLVER_TYPES),
    ),
    LOWER_ORDER_FINAL,
    key("euler_at_final", Def::Bool(false), Kind::Bool),
    FINAL_SIGMAS,
];

const SHIFT: KeySpec = key("shift", Def::Float(1.0), Kind::Positive);

const BASE_SHIFT: KeySpec = key("base_shift", Def::Float(0.5), Kind::OptPositive);
const MAX_SHIFT: KeySpec = key("max_shift", Def::Float(1.15), Kind::OptPositive);
const SEQ_LEN_RANGE: Kind = Kind::Int {
    min: 1,
    max: i64::MAX,
};
const BASE_SEQ_LEN: KeySpec = key("base_image_seq_len", Def::Int(256), SEQ_LEN_RANGE);
const MAX_SEQ_LEN: KeySpec = key("max_image_seq_len", Def::Int(4096), SEQ_LEN_RANGE);
const INVERT_SIGMAS: KeySpec = key("invert_sigmas", Def::Bool(false), Kind::Bool);
const SHIFT_TERMINAL: KeySpec = key("shift_terminal", Def::Null, Kind::OptBelowOne);
const FLOW_SHIFT_TYPE: KeySpec = key(
    "time_shift_type",
    Def::Str("exponential"),
    Kind::Choice(&["exponential", "linear"]),
);
const STOCHASTIC_SAMPLING: KeySpec = key("stochastic_sampling", Def::Bool(false), Kind::Bool);

const FLOW_MATCH_EULER: &[KeySpec] = &[
    NTT,
    SHIFT,
    DYNAMIC_SHIFTING,
    BASE_SHIFT,
    MAX_SHIFT,
    BASE_SEQ_LEN,
    MAX_SEQ_LEN,
    INVERT_SIGMAS,
    SHIFT_TERMINAL,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SHIFT_TYPE,
    STOCHASTIC_SAMPLING,
];

const FLOW_MATCH_HEUN: &[KeySpec] = &[NTT, SHIFT];

// ---- classes added for issue 14 (diffusers 0.42.1 `__init__` signatures) ----

/// A float that only `step` reads: any finite value.
const fn step_float(name: &'static str, default: f64) -> KeySpec {
    key(name, Def::Float(default), Kind::Finite)
}

const NONNEG_INT: Kind = Kind::Int {
    min: 0,
    max: MAX_STEPS,
};
const EDM_SCHEDULES: &[&str] = &["karras", "exponential"];

// schedulers/scheduling_consistency_models.py
const CM_STOCHASTIC_ITERATIVE: &[KeySpec] = &[
    key("num_train_timesteps", Def::Int(40), STEPS_RANGE),
    EDM_SIGMA_MIN,
    EDM_SIGMA_MAX,
    EDM_SIGMA_DATA,
    step_float("s_noise", 1.0),
    EDM_RHO,
    key("clip_denoised", Def::Bool(true), Kind::Bool),
];

// schedulers/scheduling_ddim_cogvideox.py and scheduling_dpm_cogvideox.py (same signature)
const COGVIDEOX: &[KeySpec] = &[
    NTT,
    SD_BETA_START,
    SD_BETA_END,
    key(
        "beta_schedule",
        Def::Str("scaled_linear"),
        Kind::Choice(VP3),
    ),
    TRAINED_BETAS,
    key("clip_sample", Def::Bool(true), Kind::Bool),
    key("set_alpha_to_one", Def::Bool(true), Kind::Bool),
    STEPS_OFFSET,
    PREDICTION,
    CLIP_RANGE,
    SAMPLE_MAX,
    SPACING_LEADING,
    ZERO_SNR,
    key("snr_shift_scale", Def::Float(3.0), Kind::Positive),
];

// schedulers/scheduling_consistency_decoder.py
const CONSISTENCY_DECODER: &[KeySpec] = &[
    key("num_train_timesteps", Def::Int(1024), STEPS_RANGE),
    EDM_SIGMA_DATA,
];

// schedulers/scheduling_cosine_dpmsolver_multistep.py
const COSINE_DPM: &[KeySpec] = &[
    key("sigma_min", Def::Float(0.3), Kind::Positive),
    key("sigma_max", Def::Float(500.0), Kind::Positive),
    key("sigma_data", Def::Float(1.0), Kind::Positive),
    key(
        "sigma_schedule",
        Def::Str("exponential"),
        Kind::Choice(EDM_SCHEDULES),
    ),
    NTT,
    SOLVER_ORDER,
    key(
        "prediction_type",
        Def::Str("v_prediction"),
        Kind::Choice(PREDICTIONS),
    ),
    EDM_RHO,
    key(
        "solver_type",
        Def::Str("midpoint"),
        Kind::Choice(SOLVER_TYPES),
    ),
    LOWER_ORDER_FINAL,
    key("euler_at_final", Def::Bool(false), Kind::Bool),
    FINAL_SIGMAS,
];

// schedulers/scheduling_ddim_inverse.py (its `set_timesteps` knows leading and trailing only)
const DDIM_INVERSE: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    key("clip_sample", Def::Bool(true), Kind::Bool),
    key("set_alpha_to_one", Def::Bool(true), Kind::Bool),
    STEPS_OFFSET,
    PREDICTION,
    CLIP_RANGE,
    key(
        "timestep_spacing",
        Def::Str("leading"),
        Kind::Choice(&["leading", "trailing"]),
    ),
    ZERO_SNR,
];

// schedulers/scheduling_ddpm_wuerstchen.py
const DDPM_WUERSTCHEN: &[KeySpec] = &[
    key("scaler", Def::Float(1.0), Kind::Positive),
    key("s", Def::Float(0.008), Kind::Positive),
];

// schedulers/scheduling_dpmsolver_multistep_inverse.py
const DPM_MULTISTEP_INVERSE: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    BETA_SCHEDULE,
    TRAINED_BETAS,
    SOLVER_ORDER,
    PREDICTION,
    THRESHOLDING,
    DTR,
    SAMPLE_MAX,
    key(
        "algorithm_type",
        Def::Str("dpmsolver++"),
        Kind::Choice(&[
            "dpmsolver",
            "dpmsolver++",
            "sde-dpmsolver",
            "sde-dpmsolver++",
            "deis",
        ]),
    ),
    key(
        "solver_type",
        Def::Str("midpoint"),
        Kind::Choice(SOLVER_TYPES),
    ),
    LOWER_ORDER_FINAL,
    key("euler_at_final", Def::Bool(false), Kind::Bool),
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SIGMAS,
    FLOW_SHIFT,
    LAMBDA_MIN,
    DPM_VARIANCE,
    SPACING_LINSPACE,
    STEPS_OFFSET,
];

// schedulers/scheduling_flow_map_euler_discrete.py
const FLOW_MAP_EULER: &[KeySpec] = &[NTT, SHIFT];

// schedulers/scheduling_flow_match_lcm.py
const FLOW_MATCH_LCM: &[KeySpec] = &[
    NTT,
    SHIFT,
    DYNAMIC_SHIFTING,
    BASE_SHIFT,
    MAX_SHIFT,
    BASE_SEQ_LEN,
    MAX_SEQ_LEN,
    INVERT_SIGMAS,
    SHIFT_TERMINAL,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SHIFT_TYPE,
    key("scale_factors", Def::Null, Kind::OptFloatList),
    key(
        "upscale_mode",
        Def::Str("bicubic"),
        Kind::Choice(&[
            "nearest",
            "linear",
            "bilinear",
            "bicubic",
            "trilinear",
            "area",
            "nearest-exact",
        ]),
    ),
];

const HELIOS_STAGES: KeySpec = key("stages", Def::Int(3), Kind::Int { min: 1, max: 1_000 });
const HELIOS_STAGE_RANGE: KeySpec = key(
    "stage_range",
    Def::FloatList(&[0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]),
    Kind::FloatList,
);
const HELIOS_GAMMA: KeySpec = key("gamma", Def::Float(1.0 / 3.0), Kind::Positive);
const FLOW_PREDICTION: KeySpec = key(
    "prediction_type",
    Def::Str("flow_prediction"),
    Kind::Choice(PREDICTIONS),
);

// schedulers/scheduling_helios.py
const HELIOS: &[KeySpec] = &[
    NTT,
    SHIFT,
    HELIOS_STAGES,
    HELIOS_STAGE_RANGE,
    HELIOS_GAMMA,
    THRESHOLDING,
    FLOW_PREDICTION,
    SOLVER_ORDER,
    key("predict_x0", Def::Bool(true), Kind::Bool),
    key("solver_type", Def::Str("bh2"), Kind::Choice(SOLVER_TYPES)),
    LOWER_ORDER_FINAL,
    key("disable_corrector", Def::EmptyIntList, Kind::IntList),
    key("solver_p", Def::Null, Kind::NullOnly),
    key("use_flow_sigmas", Def::Bool(true), Kind::Bool),
    key("scheduler_type", Def::Str("unipc"), Kind::Text),
    DYNAMIC_SHIFTING,
    FLOW_SHIFT_TYPE,
];

// schedulers/scheduling_helios_dmd.py
const HELIOS_DMD: &[KeySpec] = &[
    NTT,
    SHIFT,
    HELIOS_STAGES,
    HELIOS_STAGE_RANGE,
    HELIOS_GAMMA,
    FLOW_PREDICTION,
    key("use_flow_sigmas", Def::Bool(true), Kind::Bool),
    DYNAMIC_SHIFTING,
    key(
        "time_shift_type",
        Def::Str("linear"),
        Kind::Choice(&["exponential", "linear"]),
    ),
];

// schedulers/scheduling_ipndm.py
const IPNDM: &[KeySpec] = &[NTT, TRAINED_BETAS];

// schedulers/deprecated/scheduling_karras_ve.py
const KARRAS_VE: &[KeySpec] = &[
    key("sigma_min", Def::Float(0.02), Kind::Positive),
    key("sigma_max", Def::Float(100.0), Kind::Positive),
    step_float("s_noise", 1.007),
    step_float("s_churn", 80.0),
    step_float("s_min", 0.05),
    step_float("s_max", 50.0),
];

// schedulers/scheduling_ltx_euler_ancestral_rf.py. Its `set_timesteps` builds a
// FlowMatchEulerDiscreteScheduler from its own config, so the flow-matching keys (which diffusers
// keeps in the config as hidden keys of a compatible class) shape its schedule too.
const LTX_EULER_ANCESTRAL_RF: &[KeySpec] = &[
    NTT,
    step_float("eta", 1.0),
    step_float("s_noise", 1.0),
    SHIFT,
    DYNAMIC_SHIFTING,
    BASE_SHIFT,
    MAX_SHIFT,
    BASE_SEQ_LEN,
    MAX_SEQ_LEN,
    INVERT_SIGMAS,
    SHIFT_TERMINAL,
    KARRAS,
    EXPONENTIAL,
    BETA_SIGMAS,
    FLOW_SHIFT_TYPE,
    STOCHASTIC_SAMPLING,
];

// schedulers/scheduling_minimax_h3.py
const MINIMAX_H3: &[KeySpec] = &[key("shift", Def::Float(12.0), Kind::Positive)];

// schedulers/scheduling_piflow.py
const PIFLOW: &[KeySpec] = &[
    NTT,
    key("shift", Def::Float(5.0), Kind::Positive),
    key(
        "n_grid",
        Def::Int(10),
        Kind::Int {
            min: 2,
            max: MAX_STEPS,
        },
    ),
    key("eps", Def::Float(1e-6), Kind::Positive),
    key(
        "final_step_size_scale",
        Def::Float(0.5),
        Kind::Float {
            min: f64::MIN_POSITIVE,
            max: 1.0,
        },
    ),
    key(
        "num_policy_substeps",
        Def::Int(128),
        Kind::Int {
            min: 1,
            max: MAX_STEPS,
        },
    ),
];

// schedulers/scheduling_repaint.py
const REPAINT: &[KeySpec] = &[
    NTT,
    BETA_START,
    BETA_END,
    key(
        "beta_schedule",
        Def::Str("linear"),
        Kind::Choice(&["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]),
    ),
    step_float("eta", 0.0),
    TRAINED_BETAS,
    key("clip_sample", Def::Bool(true), Kind::Bool),
];

// schedulers/scheduling_rfd4_proteina.py
const RFD4_PROTEINA: &[KeySpec] = &[
    key(
        "schedule_mode",
        Def::Required,
        Kind::Choice(&["log", "power"]),
    ),
    key("noise_mode", Def::Required, Kind::Choice(&["1/t", "tan"])),
    key("tsr_k", Def::Required, Kind::Finite),
    key("tsr_sigma", Def::Required, Kind::Finite),
    key("tail_steps", Def::Int(10), NONNEG_INT),
    key("tail_step_multiplier", Def::Int(2), NONNEG_INT),
    step_float("t_lim_ode", 0.95),
    step_float("t_lim_ode_below", 0.02),
];

// schedulers/scheduling_scm.py
const SCM: &[KeySpec] = &[
    NTT,
    key("prediction_type", Def::Str("trigflow"), Kind::Text),
    EDM_SIGMA_DATA,
];

// schedulers/scheduling_sde_ve.py
const SCORE_SDE_VE: &[KeySpec] = &[
    key("num_train_timesteps", Def::Int(2000), STEPS_RANGE),
    step_float("snr", 0.15),
    key("sigma_min", Def::Float(0.01), Kind::Positive),
    key("sigma_max", Def::Float(1348.0), Kind::Positive),
    key("sampling_eps", Def::Float(1e-5), Kind::Positive),
    key("correct_steps", Def::Int(1), NONNEG_INT),
];

// schedulers/deprecated/scheduling_sde_vp.py
const SCORE_SDE_VP: &[KeySpec] = &[
    key("num_train_timesteps", Def::Int(2000), STEPS_RANGE),
    step_float("beta_min", 0.1),
    step_float("beta_max", 20.0),
    key("sampling_eps", Def::Float(1e-3), Kind::Positive),
];

// schedulers/scheduling_unclip.py
const UNCLIP: &[KeySpec] = &[
    NTT,
    key(
        "variance_type",
        Def::Str("fixed_small_log"),
        Kind::Choice(&["fixed_small_log", "learned_range"]),
    ),
    key("clip_sample", Def::Bool(true), Kind::Bool),
    CLIP_RANGE,
    PREDICTION,
    key(
        "beta_schedule",
        Def::Str("squaredcos_cap_v2"),
        Kind::Choice(&["squaredcos_cap_v2"]),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keys_are_unique() {
        for class in SchedulerClass::ALL {
            assert_eq!(SchedulerClass::from_name(class.name()), Some(class));
            let keys = class.keys();
            for (i, k) in keys.iter().enumerate() {
                assert!(
                    keys[i + 1..].iter().all(|other| other.name != k.name),
                    "{} repeats {}",
                    class.name(),
                    k.name
                );
            }
        }
        assert_eq!(SchedulerClass::from_name("eulerdiscretescheduler"), None);
        assert!(SchedulerClass::any_declares("use_karras_sigmas"));
        assert!(!SchedulerClass::any_declares("use_karas_sigmas"));
    }
}
