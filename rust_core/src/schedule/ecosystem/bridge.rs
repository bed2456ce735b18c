//! Adapter to the diffusers-side types of `schedule`: takes its `ConfigMap`s and returns its
//! `Schedule`, so `schedule::get_schedule("comfyui:karras", ...)` can hand over to
//! [`super::get_schedule_by_name`] with one line.

use super::super::{ConfigMap, ConfigValue, Schedule, Timesteps};
use super::{get_schedule_by_name, EcosystemSchedule, Options, Value};
use crate::error::{CoreError, Result};

fn to_options(map: &ConfigMap, strict: bool) -> Result<Options> {
    let mut out = Options::new();
    for (k, v) in map.iter() {
        let value = match v {
            ConfigValue::Null => continue,
            ConfigValue::Bool(b) => Value::Bool(*b),
            ConfigValue::Int(i) => Value::Int(*i),
            ConfigValue::Float(f) => Value::Float(*f),
            ConfigValue::Str(s) => Value::Str(s.clone()),
            _ if strict => {
                return Err(CoreError::invalid(
                    k,
                    "ecosystem schedules take scalar options (bool, int, float or str)",
                ))
            }
            _ => continue,
        };
        out.insert(k.to_string(), value);
    }
    Ok(out)
}

fn to_config(opts: &Options) -> ConfigMap {
    opts.iter()
        .map(|(k, v)| {
            let cv = match v {
                Value::Bool(b) => ConfigValue::Bool(*b),
                Value::Int(i) => ConfigValue::Int(*i),
                Value::Float(f) => ConfigValue::Float(*f),
                Value::Str(s) => ConfigValue::Str(s.clone()),
            };
            (k.clone(), cv)
        })
        .collect()
}

impl EcosystemSchedule {
    /// Converts to the diffusers-side [`Schedule`]: float32 timesteps, the tool's
    /// `init_noise_sigma`, and the resolved options plus `init_noise`, `model_sampling` and
    /// the model's σ range in `config`.
    pub fn into_schedule(self) -> Schedule {
        let mut config = to_config(&self.config);
        config.insert(
            "init_noise",
            ConfigValue::Str(self.init_noise.name().into()),
        );
        config.insert(
            "model_sampling",
            ConfigValue::Str(self.model_sampling.clone()),
        );
        config.insert(
            "model_sigma_min",
            ConfigValue::Float(self.model_sigma_range.0),
        );
        config.insert(
            "model_sigma_max",
            ConfigValue::Float(self.model_sigma_range.1),
        );
        Schedule {
            scheduler: self.scheduler,
            num_inference_steps: self.num_inference_steps,
            timesteps: Timesteps::F32(self.timesteps),
            sigmas: Some(self.sigmas.into()),
            init_noise_sigma: self.init_noise_sigma,
            betas: self.betas.unwrap_or_default().into(),
            alphas_cumprod: self.alphas_cumprod.unwrap_or_default().into(),
            config,
            warnings: self.warnings,
            order: 1,
            img2img: None,
        }
    }
}

/// `schedule::get_schedule` for `"<tool>:<name>"` names, with the diffusers-side types.
/// `num_inference_steps` is required (ecosystem schedules take no custom arrays).
pub fn get_schedule_diffusers(
    scheduler: &str,
    num_inference_steps: Option<usize>,
    preset: Option<&str>,
    config: &ConfigMap,
    overrides: &ConfigMap,
) -> Result<Schedule> {
    let n = num_inference_steps.ok_or_else(|| {
        CoreError::invalid("num_inference_steps", "is required for ecosystem schedules")
    })?;
    let cfg = to_options(config, false)?;
    let ov = to_options(overrides, true)?;
    Ok(get_schedule_by_name(scheduler, n, preset, &cfg, &ov)?.into_schedule())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bridges_to_schedule() {
        let s = get_schedule_diffusers(
            "ComfyUI:Karras",
            Some(20),
            Some("sd15"),
            &ConfigMap::new(),
            &ConfigMap::new(),
        )
        .unwrap();
        assert_eq!(s.scheduler, "comfyui:karras");
        assert_eq!(s.timesteps.len(), 20);
        assert_eq!(s.sigmas.as_ref().map(|v| v.len()), Some(21));
        assert!((s.init_noise_sigma - 14.648813504855193).abs() < 2e-6);
        assert_eq!(
            s.config.get("init_noise"),
            Some(&ConfigValue::Str("sqrt1p".into()))
        );
        let mut bad = ConfigMap::new();
        bad.insert("rho", ConfigValue::FloatList(vec![1.0]));
        let e = get_schedule_diffusers("comfyui:karras", Some(20), None, &ConfigMap::new(), &bad);
        assert_eq!(e.unwrap_err().field(), "rho");
        let e = get_schedule_diffusers(
            "comfyui:karras",
            None,
            None,
            &ConfigMap::new(),
            &ConfigMap::new(),
        );
        assert_eq!(e.unwrap_err().field(), "num_inference_steps");
    }
}
