//! How one training-argument value is read from a flag or a config file and
//! written back as JSON, and the enums behind the strategy arguments.

use crate::pyjson::Json;

/// What the command-line parser needs to know of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag`, `--flag true`, `--flag false`.
    Bool,
    /// One value.
    Single,
    /// One or more values (`--report_to a b`).
    List,
}

/// A value of a `TrainingArguments` field.
pub trait ArgValue: Sized {
    const KIND: Kind = Kind::Single;
    /// Parses the text given after a flag.
    fn from_text(text: &str) -> Result<Self, String>;
    /// Converts a value read from a TOML or JSON config file.
    fn from_json(value: &Json) -> Result<Self, String> {
        match value {
            Json::Str(s) => Self::from_text(s),
            Json::Int(i) => Self::from_text(&i.to_string()),
            Json::Float(f) => Self::from_text(&f.to_string()),
            Json::Bool(b) => Self::from_text(if *b { "true" } else { "false" }),
            _ => Err("expected a single value".into()),
        }
    }
    /// The value as `TrainingArguments.to_dict()` writes it.
    fn to_json(&self) -> Json;
}

impl ArgValue for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn to_json(&self) -> Json {
        Json::Str(self.clone())
    }
}

impl ArgValue for f64 {
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("expected a number, got {text:?}"))
    }
    fn to_json(&self) -> Json {
        Json::Float(*self)
    }
}

macro_rules! int_arg {
    ($($ty:ty),*) => {$(
        impl ArgValue for $ty {
            fn from_text(text: &str) -> Result<Self, String> {
                let text = text.trim();
                if let Ok(v) = text.parse() {
                    return Ok(v);
                }
                // Accept `5.0`, as Python's int() of a float literal would not,
                // but a TOML or JSON writer might produce it.
                match text.parse::<f64>() {
                    Ok(f) if f.fract() == 0.0 => <$ty>::try_from(f as i64)
                        .map_err(|_| format!("{text} is out of range")),
                    _ => Err(format!("expected an integer, got {text:?}")),
                }
            }
            fn to_json(&self) -> Json {
                Json::Int(*self as i64)
            }
        }
    )*};
}
int_arg!(i64, u64, u32);

impl ArgValue for bool {
    const KIND: Kind = Kind::Bool;
    /// HF's `string_to_bool`: yes/true/t/y/1 and no/false/f/n/0.
    fn from_text(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "yes" | "true" | "t" | "y" | "1" => Ok(true),
            "no" | "false" | "f" | "n" | "0" => Ok(false),
            _ => Err(format!(
                "truthy value expected: got {text:?} but expected one of yes/no, true/false, t/f, y/n, 1/0"
            )),
        }
    }
    fn to_json(&self) -> Json {
        Json::Bool(*self)
    }
}

impl<T: ArgValue> ArgValue for Option<T> {
    const KIND: Kind = T::KIND;
    fn from_text(text: &str) -> Result<Self, String> {
        if text == "None" {
            return Ok(None);
        }
        T::from_text(text).map(Some)
    }
    fn from_json(value: &Json) -> Result<Self, String> {
        match value {
            Json::Null => Ok(None),
            v => T::from_json(v).map(Some),
        }
    }
    fn to_json(&self) -> Json {
        self.as_ref().map_or(Json::Null, T::to_json)
    }
}

impl ArgValue for Vec<String> {
    const KIND: Kind = Kind::List;
    /// One value, or several separated by commas.
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }
    fn from_json(value: &Json) -> Result<Self, String> {
        match value {
            Json::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .ok_or("expected a list of strings".to_string())
                })
                .collect(),
            Json::Str(s) => Self::from_text(s),
            _ => Err("expected a string or a list of strings".into()),
        }
    }
    fn to_json(&self) -> Json {
        Json::Array(self.iter().cloned().map(Json::Str).collect())
    }
}

/// An argument that takes one of HF's spellings: the enum, defined by the
/// sandbox crate's `choice_enum!` (so that every choice is spelled one
/// way), and its [`ArgValue`].
macro_rules! choice_arg {
    ($(#[$meta:meta])* $name:ident { $($body:tt)* }) => {
        trainbox_sandbox::choice_enum!($(#[$meta])* $name { $($body)* });
        choice_value!($name);
    };
}

/// [`ArgValue`] for an enum of `choice_enum!`.
macro_rules! choice_value {
    ($name:ident) => {
        impl ArgValue for $name {
            fn from_text(text: &str) -> Result<Self, String> {
                $name::from_name(text).ok_or_else(|| {
                    format!(
                        "{:?} is not a valid {}, please select one of [{}]",
                        text,
                        stringify!($name),
                        $name::CHOICES
                            .iter()
                            .map(|c| format!("'{c}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
            fn to_json(&self) -> Json {
                Json::Str(self.as_str().into())
            }
        }
    };
}

// The strategies are the sandbox crate's: plugins receive them (`RunArgs`).
pub use trainbox_sandbox::{IntervalStrategy, SaveStrategy};
choice_value!(IntervalStrategy);
choice_value!(SaveStrategy);

choice_arg!(
    /// The learning-rate schedule (`SchedulerType` of transformers 5.24,
    /// every value; `trainer::schedule` computes each as HF does).
    SchedulerType {
        Linear = "linear",
        Cosine = "cosine",
        CosineWithRestarts = "cosine_with_restarts",
        Polynomial = "polynomial",
        Constant = "constant",
        ConstantWithWarmup = "constant_with_warmup",
        InverseSqrt = "inverse_sqrt",
        ReduceLrOnPlateau = "reduce_lr_on_plateau",
        CosineWithMinLr = "cosine_with_min_lr",
        CosineWarmupWithMinLr = "cosine_warmup_with_min_lr",
        WarmupStableDecay = "warmup_stable_decay",
        Greedy = "greedy",
    }
);

impl SchedulerType {
    /// Whether the schedule steps on the evaluation metric (after each
    /// evaluation) rather than on every optimizer step, as HF's
    /// `ReduceLROnPlateau` and `GreedyLR`.
    pub fn steps_on_metric(self) -> bool {
        matches!(
            self,
            SchedulerType::ReduceLrOnPlateau | SchedulerType::Greedy
        )
    }
}

choice_arg!(
    /// The optimizer (`OptimizerNames` of transformers 5.24, every value).
    /// [`OptimizerName::algorithm`] says which trainbox runs, or why not.
    OptimizerName {
        AdamwTorch = "adamw_torch",
        AdamwTorchFused = "adamw_torch_fused",
        AdamwTorchXla = "adamw_torch_xla",
        AdamwTorchNpuFused = "adamw_torch_npu_fused",
        Adafactor = "adafactor",
        AdamwAnyprecision = "adamw_anyprecision",
        AdamwTorch4bit = "adamw_torch_4bit",
        AdamwTorch8bit = "adamw_torch_8bit",
        Ademamix = "ademamix",
        Sgd = "sgd",
        Adagrad = "adagrad",
        AdamwBnb8bit = "adamw_bnb_8bit",
        Adamw8bit = "adamw_8bit",
        Ademamix8bit = "ademamix_8bit",
        Lion8bit = "lion_8bit",
        Lion32bit = "lion_32bit",
        PagedAdamw32bit = "paged_adamw_32bit",
        PagedAdamw8bit = "paged_adamw_8bit",
        PagedAdemamix32bit = "paged_ademamix_32bit",
        PagedAdemamix8bit = "paged_ademamix_8bit",
        PagedLion32bit = "paged_lion_32bit",
        PagedLion8bit = "paged_lion_8bit",
        Rmsprop = "rmsprop",
        RmspropBnb = "rmsprop_bnb",
        RmspropBnb8bit = "rmsprop_bnb_8bit",
        RmspropBnb32bit = "rmsprop_bnb_32bit",
        GaloreAdamw = "galore_adamw",
        GaloreAdamw8bit = "galore_adamw_8bit",
        GaloreAdafactor = "galore_adafactor",
        GaloreAdamwLayerwise = "galore_adamw_layerwise",
        GaloreAdamw8bitLayerwise = "galore_adamw_8bit_layerwise",
        GaloreAdafactorLayerwise = "galore_adafactor_layerwise",
        Lomo = "lomo",
        Adalomo = "adalomo",
        Grokadamw = "grokadamw",
        ScheduleFreeRadam = "schedule_free_radam",
        ScheduleFreeAdamw = "schedule_free_adamw",
        ScheduleFreeSgd = "schedule_free_sgd",
        ApolloAdamw = "apollo_adamw",
        ApolloAdamwLayerwise = "apollo_adamw_layerwise",
        StableAdamw = "stable_adamw",
    }
);

/// The update rules trainbox implements (`trainer::optim`), each equal to
/// the torch or transformers class HF's Trainer builds for the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `torch.optim.AdamW` (`adamw_torch`, `adamw_torch_fused`).
    AdamW,
    /// `torch.optim.SGD`.
    Sgd,
    /// `torch.optim.Adagrad`.
    Adagrad,
    /// `torch.optim.RMSprop`.
    RmsProp,
    /// `transformers.optimization.Adafactor`.
    Adafactor,
}

impl Algorithm {
    /// The `--optim` name a checkpoint of this algorithm is resumed with.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::AdamW => "adamw_torch",
            Algorithm::Sgd => "sgd",
            Algorithm::Adagrad => "adagrad",
            Algorithm::RmsProp => "rmsprop",
            Algorithm::Adafactor => "adafactor",
        }
    }
}

impl OptimizerName {
    /// The algorithm trainbox runs for this name, or one line saying why
    /// trainbox does not support it.
    pub fn algorithm(self) -> Result<Algorithm, String> {
        use OptimizerName as O;
        let needs = |what: &str| {
            Err(format!(
                "--optim {self} needs {what}, which trainbox does not link; use adamw_torch (or sgd, adagrad, rmsprop, adafactor)"
            ))
        };
        match self {
            O::AdamwTorch | O::AdamwTorchFused => Ok(Algorithm::AdamW),
            O::Sgd => Ok(Algorithm::Sgd),
            O::Adagrad => Ok(Algorithm::Adagrad),
            O::Rmsprop => Ok(Algorithm::RmsProp),
            O::Adafactor => Ok(Algorithm::Adafactor),
            O::AdamwTorchXla => needs("torch_xla (TPUs)"),
            O::AdamwTorchNpuFused => needs("torch_npu (Ascend NPUs)"),
            O::AdamwAnyprecision => needs("torchdistx"),
            O::AdamwTorch4bit | O::AdamwTorch8bit => needs("torchao"),
            O::Ademamix
            | O::AdamwBnb8bit
            | O::Adamw8bit
            | O::Ademamix8bit
            | O::Lion8bit
            | O::Lion32bit
            | O::PagedAdamw32bit
            | O::PagedAdamw8bit
            | O::PagedAdemamix32bit
            | O::PagedAdemamix8bit
            | O::PagedLion32bit
            | O::PagedLion8bit
            | O::RmspropBnb
            | O::RmspropBnb8bit
            | O::RmspropBnb32bit => needs("bitsandbytes"),
            O::GaloreAdamw
            | O::GaloreAdamw8bit
            | O::GaloreAdafactor
            | O::GaloreAdamwLayerwise
            | O::GaloreAdamw8bitLayerwise
            | O::GaloreAdafactorLayerwise => needs("galore_torch"),
            O::Lomo | O::Adalomo => needs("lomo_optim"),
            O::Grokadamw => needs("grokadamw"),
            O::ScheduleFreeRadam | O::ScheduleFreeAdamw | O::ScheduleFreeSgd => {
                needs("schedulefree")
            }
            O::ApolloAdamw | O::ApolloAdamwLayerwise => needs("apollo_torch"),
            O::StableAdamw => needs("torch-optimi"),
        }
    }
}

/// A dict argument (`lr_scheduler_kwargs`): a JSON object on the command
/// line, a table or dict in a config file.
impl ArgValue for Json {
    /// HF's `__post_init__` for its dict fields: the text is parsed as JSON,
    /// then `_convert_str_dict` turns string values into what they spell
    /// ("true"/"false" into booleans, "12" into an int, "0.5" into a float).
    fn from_text(text: &str) -> Result<Self, String> {
        if !text.trim_start().starts_with('{') {
            return Err(format!(
                "expected a JSON object such as '{{\"num_cycles\": 2}}', got {text:?}"
            ));
        }
        let value = Json::parse(text).map_err(|e| format!("not valid JSON: {e}"))?;
        Ok(convert_str_dict(value))
    }
    fn from_json(value: &Json) -> Result<Self, String> {
        match value {
            Json::Object(_) => Ok(value.clone()),
            Json::Str(s) => Self::from_text(s),
            _ => Err("expected a table (a dict of keyword arguments)".into()),
        }
    }
    fn to_json(&self) -> Json {
        self.clone()
    }
}

/// HF's `_convert_str_dict`, recursively over nested objects.
fn convert_str_dict(value: Json) -> Json {
    let Json::Object(map) = value else {
        return value;
    };
    let convert = |v: Json| match v {
        Json::Object(_) => convert_str_dict(v),
        Json::Str(s) => {
            let lower = s.to_lowercase();
            // Python's str.isdigit: ASCII digits here (Unicode digits aside).
            let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
            if lower == "true" || lower == "false" {
                Json::Bool(lower == "true")
            } else if digits(&s) {
                s.parse().map(Json::Int).unwrap_or(Json::Str(s))
            } else if digits(&s.replacen('.', "", 1)) {
                s.parse().map(Json::Float).unwrap_or(Json::Str(s))
            } else {
                Json::Str(s)
            }
        }
        other => other,
    };
    Json::Object(map.into_iter().map(|(k, v)| (k, convert(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_hf_string_to_bool() {
        for t in ["yes", "True", "t", "Y", "1"] {
            assert!(bool::from_text(t).unwrap(), "{t}");
        }
        for f in ["no", "FALSE", "f", "n", "0"] {
            assert!(!bool::from_text(f).unwrap(), "{f}");
        }
        assert!(bool::from_text("maybe")
            .unwrap_err()
            .contains("truthy value expected"));
    }

    #[test]
    fn choices_list_the_valid_spellings() {
        assert_eq!(
            SchedulerType::from_text("cosine"),
            Ok(SchedulerType::Cosine)
        );
        let err = SchedulerType::from_text("cosin").unwrap_err();
        assert!(err.contains("'constant_with_warmup'"), "{err}");
    }

    #[test]
    fn every_optimizer_name_is_run_or_refused_with_its_library() {
        assert_eq!(
            OptimizerName::from_text("adamw_torch_fused")
                .unwrap()
                .algorithm(),
            Ok(Algorithm::AdamW)
        );
        assert_eq!(OptimizerName::CHOICES.len(), 41);
        let err = OptimizerName::AdamwBnb8bit.algorithm().unwrap_err();
        assert!(
            err.contains("needs bitsandbytes, which trainbox does not link; use adamw_torch"),
            "{err}"
        );
        for name in OptimizerName::CHOICES {
            let o = OptimizerName::from_text(name).unwrap();
            if let Err(why) = o.algorithm() {
                assert!(why.starts_with(&format!("--optim {name} needs ")), "{why}");
            }
        }
    }

    #[test]
    fn dict_arguments_convert_strings_as_hf() {
        let j = Json::from_text(
            r#"{"a": "true", "b": "12", "c": "0.5", "d": "1e-5", "e": "-1", "f": 3}"#,
        )
        .unwrap();
        let o = j.as_object().unwrap();
        assert_eq!(o["a"], Json::Bool(true));
        assert_eq!(o["b"], Json::Int(12));
        assert_eq!(o["c"], Json::Float(0.5));
        assert_eq!(o["d"], Json::Str("1e-5".into()));
        assert_eq!(o["e"], Json::Str("-1".into()));
        assert_eq!(o["f"], Json::Int(3));
        assert!(Json::from_text("cosine.json").is_err());
    }

    #[test]
    fn integers_accept_integral_floats_only() {
        assert_eq!(u32::from_text("5"), Ok(5));
        assert_eq!(u32::from_text("5.0"), Ok(5));
        assert!(u32::from_text("5.5").is_err());
        assert!(u32::from_text("-1").is_err());
    }
}
