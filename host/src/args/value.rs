//! How one training-argument value is read from a flag or a config file and
//! written back as JSON, and the enums behind the strategy arguments.

use crate::pyjson::Json;
use std::fmt;

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

/// Declares a string-valued enum argument with HF's spellings.
macro_rules! choice_arg {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const CHOICES: &'static [&'static str] = &[$($text),*];

            /// HF's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ArgValue for $name {
            fn from_text(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)*
                    _ => Err(format!(
                        "{:?} is not a valid {}, please select one of [{}]",
                        text,
                        stringify!($name),
                        Self::CHOICES.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
            fn to_json(&self) -> Json {
                Json::Str(self.as_str().into())
            }
        }
    };
}

choice_arg!(
    /// When to log or evaluate (`IntervalStrategy`).
    IntervalStrategy { No = "no", Steps = "steps", Epoch = "epoch" }
);

choice_arg!(
    /// When to save a checkpoint (`SaveStrategy`).
    SaveStrategy { No = "no", Steps = "steps", Epoch = "epoch", Best = "best" }
);

choice_arg!(
    /// The learning-rate schedule (`SchedulerType`).
    SchedulerType {
        Linear = "linear",
        Cosine = "cosine",
        Constant = "constant",
        ConstantWithWarmup = "constant_with_warmup",
    }
);

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
    fn integers_accept_integral_floats_only() {
        assert_eq!(u32::from_text("5"), Ok(5));
        assert_eq!(u32::from_text("5.0"), Ok(5));
        assert!(u32::from_text("5.5").is_err());
        assert!(u32::from_text("-1").is_err());
    }
}
