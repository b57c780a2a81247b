//! Floats as Python writes them: `repr(float)` (and `json.dumps`, which uses
//! the same digits but spells the non-finite values `NaN`/`Infinity`), and
//! `format(v, '.Ng')`.

use std::fmt::{self, Write as _};

/// How the non-finite values are spelled.
#[derive(Clone, Copy)]
pub(crate) enum NonFinite {
    /// `repr`: `nan`, `inf`, `-inf`.
    Repr,
    /// `json.dumps` (with its default `allow_nan`): `NaN`, `Infinity`, `-Infinity`.
    Json,
}

/// Python's `repr(float)`: the shortest digits that read back as the same
/// float, in fixed notation for decimal exponents -4 to 15 (`0.0001`, `3.0`,
/// `1000000000000000.0`) and scientific otherwise (`1e-05`, `1e+16`);
/// `nan`, `inf`, `-inf`.
pub fn float_repr(v: f64) -> String {
    let mut out = String::new();
    push_float(&mut out, v, NonFinite::Repr);
    out
}

/// A float as `json.dumps` writes it: [`float_repr`]'s digits, with `NaN`,
/// `Infinity` and `-Infinity` for the values JSON lacks.
pub fn json_float(v: f64) -> String {
    let mut out = String::new();
    push_float(&mut out, v, NonFinite::Json);
    out
}

/// Appends `v` as `repr(float)` does, spelling non-finite values as asked.
pub(crate) fn push_float(out: &mut String, v: f64, spelling: NonFinite) {
    if !v.is_finite() {
        out.push_str(match (spelling, v.is_nan(), v > 0.0) {
            (NonFinite::Repr, true, _) => "nan",
            (NonFinite::Repr, false, true) => "inf",
            (NonFinite::Repr, false, false) => "-inf",
            (NonFinite::Json, true, _) => "NaN",
            (NonFinite::Json, false, true) => "Infinity",
            (NonFinite::Json, false, false) => "-Infinity",
        });
        return;
    }
    // `{:e}` gives the shortest round-trip digits, as Python's repr does:
    // "-1.2345e-7", "4e0". At most 24 bytes, so no allocation.
    let mut sci = StackStr::default();
    write!(sci, "{v:e}").expect("`{:e}` of an f64 fits in 32 bytes");
    let sci = sci.as_str();
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` has an integer exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    // The significant digits: the one before the point and those after it.
    let (first, rest) = mantissa.split_at(1);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    out.push_str(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(first);
            out.push_str(rest);
        } else {
            // `exp` digits of `rest` belong before the point.
            let before = exp as usize;
            out.push_str(first);
            if rest.len() <= before {
                out.push_str(rest);
                out.extend(std::iter::repeat_n('0', before - rest.len()));
                out.push_str(".0");
            } else {
                out.push_str(&rest[..before]);
                out.push('.');
                out.push_str(&rest[before..]);
            }
        }
    } else {
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Python's `f"{v:.4g}"`, as HF's progress and printer callbacks format floats.
pub fn g4(v: f64) -> String {
    general(v, 4)
}

/// Python's `format(v, f".{precision}g")`: `precision` significant digits
/// (0 counts as 1), trailing zeros dropped, scientific notation when the
/// exponent is below -4 or not below `precision`; `nan`, `inf`, `-0`.
pub fn general(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` has an integer exponent");
    if exp < -4 || exp >= p as i32 {
        let m = strip_zeros(mantissa);
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A 32-byte string on the stack, for one `{:e}` of an `f64`.
#[derive(Default)]
struct StackStr {
    bytes: [u8; 32],
    len: usize,
}

impl StackStr {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("written from `&str`s")
    }
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `repr(v)` as CPython writes it (checked with 3.11), for the cases the host, the SDK and the
    /// plugins tested on their own before they shared this crate.
    const REPRS: &[(f64, &str)] = &[
        (1e-5, "1e-05"),
        (4e-05, "4e-05"),
        (5e-5, "5e-05"),
        (4.792e-05, "4.792e-05"),
        (1e-08, "1e-08"),
        (1.5e-7, "1.5e-07"),
        (-2.5e-7, "-2.5e-07"),
        (3.065406885205775e-08, "3.065406885205775e-08"),
        (0.0001, "0.0001"),
        (0.125, "0.125"),
        (0.9, "0.9"),
        (0.999, "0.999"),
        (2.675, "2.675"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1.0 / 3.0, "0.3333333333333333"),
        (1.0251411760000337, "1.0251411760000337"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (2.0, "2.0"),
        (3.0, "3.0"),
        (20.0, "20.0"),
        (-2.5, "-2.5"),
        (-71.2, "-71.2"),
        (123456.789, "123456.789"),
        (123456789012345.0, "123456789012345.0"),
        (123456789012345.6, "123456789012345.6"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (1.5e300, "1.5e+300"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
    ];

    #[test]
    fn floats_are_python_reprs() {
        for &(v, want) in REPRS {
            assert_eq!(float_repr(v), want, "repr of {v:e}");
            assert_eq!(json_float(v), want, "json.dumps of {v:e}");
        }
    }

    #[test]
    fn non_finite_floats_have_a_repr_and_a_json_spelling() {
        let cases = [
            (f64::NAN, "nan", "NaN"),
            (f64::INFINITY, "inf", "Infinity"),
            (f64::NEG_INFINITY, "-inf", "-Infinity"),
        ];
        for (v, repr, json) in cases {
            assert_eq!(float_repr(v), repr);
            assert_eq!(json_float(v), json);
        }
    }

    #[test]
    fn general_format_matches_python() {
        let cases = [
            (0.4567891, "0.4568"),
            (4.792e-05, "4.792e-05"),
            (1.0, "1"),
            (0.125, "0.125"),
            (12345.6, "1.235e+04"),
            (1234.0, "1234"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (99999.0, "1e+05"),
            (-2.5, "-2.5"),
            (-0.0, "-0"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(g4(v), want, "format({v}, '.4g')");
        }
        assert_eq!(general(2.0 / 3.0, 0), "0.7", "precision 0 counts as 1");
        assert_eq!(general(123456789.0, 12), "123456789");
    }
}
