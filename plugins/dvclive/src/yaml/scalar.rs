//! How ruamel.yaml may write a string: what its `analyze_scalar` allows
//! (plain, single- or double-quoted) and whether a plain string would read
//! back as something else under its YAML 1.2 implicit resolvers, which is
//! when it gets quoted.

/// Characters ruamel writes as they are (with `allow_unicode`).
pub fn printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// YAML line breaks.
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    c.is_none_or(|c| matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(c))
}

/// What ruamel's `analyze_scalar` concludes, for block context.
pub struct Analysis {
    pub empty: bool,
    pub multiline: bool,
    pub allow_plain: bool,
    pub allow_single_quoted: bool,
}

impl Analysis {
    pub fn of(s: &str) -> Analysis {
        if s.is_empty() {
            return Analysis {
                empty: true,
                multiline: false,
                allow_plain: true,
                allow_single_quoted: true,
            };
        }
        let chars: Vec<char> = s.chars().collect();
        let n = chars.len();
        let mut block_indicators = s.starts_with("---") || s.starts_with("...");
        let (mut line_breaks, mut special) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_ws = is_blank_or_end(chars.get(i + 1).copied());
            let preceded_by_ws = i == 0 || is_blank_or_end(Some(chars[i - 1]));
            if i == 0 {
                block_indicators |=
                    "#,[]{}&*!|>'\"%@`".contains(c) || ("?:-".contains(c) && followed_by_ws);
            } else {
                block_indicators |= (c == ':' && followed_by_ws) || (c == '#' && preceded_by_ws);
            }
            line_breaks |= is_break(c);
            if c != '\n' && !(' '..='~').contains(&c) {
                let unicode = (c == '\u{85}' || printable(c) && c > '~') && c != '\u{feff}';
                special |= !unicode;
            }
            if c == ' ' {
                break_space |= previous_break;
                (previous_space, previous_break) = (true, false);
            } else if is_break(c) {
                space_break |= previous_space;
                (previous_space, previous_break) = (false, true);
            } else {
                (previous_space, previous_break) = (false, false);
            }
        }
        let edge_space = |c: char| c == ' ' || is_break(c);
        let edges = edge_space(chars[0]) || edge_space(chars[n - 1]);
        let allow_single_quoted = !(break_space || special || space_break);
        Analysis {
            empty: false,
            multiline: line_breaks,
            allow_plain: !(edges || !allow_single_quoted || line_breaks || block_indicators),
            allow_single_quoted,
        }
    }
}

/// Whether a plain `s` would read back as something other than a string,
/// by ruamel's YAML 1.2 implicit resolvers (bool, null, int, float,
/// timestamp, merge, value, yaml).
pub fn resolves_to_non_string(s: &str) -> bool {
    matches!(
        s,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "<<"
            | "="
            | "!"
            | "&"
            | "*"
    ) || is_int(s)
        || is_float(s)
        || is_timestamp(s)
}

fn unsigned(s: &str) -> &str {
    s.strip_prefix(['-', '+']).unwrap_or(s)
}

fn all(s: &str, f: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(f)
}

/// `[-+]?(0b[01_]+ | 0o?[0-7_]+ | [0-9_]+ | 0x[0-9a-fA-F_]+)`, starting
/// with a sign or a digit (the resolver's first characters).
fn is_int(s: &str) -> bool {
    let u = unsigned(s);
    s.starts_with(|c: char| c == '-' || c == '+' || c.is_ascii_digit())
        && (u
            .strip_prefix("0b")
            .is_some_and(|r| all(r, |c| "01_".contains(c)))
            || u.strip_prefix("0o")
                .is_some_and(|r| all(r, |c| "01234567_".contains(c)))
            || u.strip_prefix('0')
                .is_some_and(|r| all(r, |c| "01234567_".contains(c)))
            || all(u, |c| c.is_ascii_digit() || c == '_')
            || u.strip_prefix("0x")
                .is_some_and(|r| all(r, |c| c.is_ascii_hexdigit() || c == '_')))
}

/// ruamel's YAML 1.2 float: `[-+]?D\.[0-9_]*E?`, `[-+]?DE`,
/// `[-+]?\.[0-9_]+(e[-+]N)?`, `[-+]?.inf`, `.nan` (D = `[0-9][0-9_]*`).
fn is_float(s: &str) -> bool {
    let u = unsigned(s);
    if matches!(u, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let digits_ = |t: &str| all(t, |c| c.is_ascii_digit() || c == '_');
    let (body, exp) = match u.find(['e', 'E']) {
        Some(i) => (&u[..i], Some(&u[i + 1..])),
        None => (u, None),
    };
    let exp_ok = |signed_required: bool| {
        exp.is_none_or(|e| {
            let d = e.strip_prefix(['-', '+']);
            if signed_required && d.is_none() {
                return false;
            }
            all(d.unwrap_or(e), |c| c.is_ascii_digit())
        })
    };
    let leading_digit = body.starts_with(|c: char| c.is_ascii_digit());
    match body.split_once('.') {
        Some((int, frac)) if leading_digit => {
            digits_(int) && (frac.is_empty() || digits_(frac)) && exp_ok(false)
        }
        Some(("", frac)) => digits_(frac) && exp_ok(true),
        Some(_) => false,
        None => leading_digit && digits_(body) && exp.is_some() && exp_ok(false),
    }
}

/// `YYYY-MM-DD`, or that with a time: `[Tt ]HH:MM:SS(.frac)?( *(Z|±HH(:MM)?))?`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    if !(0..4).all(digit) || b.get(4) != Some(&b'-') {
        return false;
    }
    if b.len() == 10 && digit(5) && digit(6) && b[7] == b'-' && digit(8) && digit(9) {
        return true;
    }
    // The long form, with one- or two-digit month, day and hour.
    let mut i = 5;
    let one_or_two = |i: &mut usize| -> bool {
        if !digit(*i) {
            return false;
        }
        *i += 1 + usize::from(digit(*i + 1));
        true
    };
    if !one_or_two(&mut i) || b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    if !one_or_two(&mut i) {
        return false;
    }
    match b.get(i) {
        Some(b'T' | b't') => i += 1,
        Some(b' ' | b'\t') => {
            while matches!(b.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if !one_or_two(&mut i) {
        return false;
    }
    for _ in 0..2 {
        if b.get(i) != Some(&b':') || !digit(i + 1) || !digit(i + 2) {
            return false;
        }
        i += 3;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while digit(i) {
            i += 1;
        }
    }
    let zone_at = i;
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match b.get(i) {
        None => i == zone_at,
        Some(b'Z') => i + 1 == b.len(),
        Some(b'-' | b'+') => {
            i += 1;
            if !one_or_two(&mut i) {
                return false;
            }
            if b.get(i) == Some(&b':') {
                if !(digit(i + 1) && digit(i + 2)) {
                    return false;
                }
                i += 3;
            }
            i == b.len()
        }
        _ => false,
    }
}
