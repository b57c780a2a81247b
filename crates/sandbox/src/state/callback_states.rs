//! The shape of `TrainerState.stateful_callbacks`, as HF's
//! `_save_checkpoint` and `_load_callback_state` use it: one entry per
//! callback name, a list when several callbacks share the name, matched
//! back in order. Both hosts store and restore their plugins' states by
//! these rules.

use crate::pyjson::Json;
use std::collections::BTreeMap;

/// The `stateful_callbacks` entries of `states` (name, state), in order:
/// a single state as itself, several of one name as a list.
pub fn collect(states: impl IntoIterator<Item = (String, Json)>) -> BTreeMap<String, Json> {
    let mut by_name: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for (name, state) in states {
        by_name.entry(name).or_default().push(state);
    }
    by_name
        .into_iter()
        .map(|(name, mut list)| {
            let value = if list.len() == 1 {
                list.remove(0)
            } else {
                Json::Array(list)
            };
            (name, value)
        })
        .collect()
}

/// The stored state of instance `n` (from 0) of callback `name`, if any.
pub fn instance<'a>(stored: &'a BTreeMap<String, Json>, name: &str, n: usize) -> Option<&'a Json> {
    match stored.get(name) {
        Some(Json::Array(list)) => list.get(n),
        Some(single) if n == 0 => Some(single),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_state_is_itself_and_several_are_a_list_in_order() {
        let s = |i: i64| Json::Int(i);
        let stored = collect([
            ("a".to_string(), s(1)),
            ("b".to_string(), s(2)),
            ("a".to_string(), s(3)),
        ]);
        assert_eq!(stored["b"], s(2));
        assert_eq!(stored["a"], Json::Array(vec![s(1), s(3)]));
        assert_eq!(instance(&stored, "a", 1), Some(&s(3)));
        assert_eq!(instance(&stored, "b", 0), Some(&s(2)));
        assert_eq!(instance(&stored, "b", 1), None);
        assert_eq!(instance(&stored, "c", 0), None);
    }
}
