//! Which TorchScript modules are causal language models, whose labels HF
//! shifts: the label smoother compares logits `[..., :-1, :]` with labels
//! `[..., 1:]`, and `num_items_in_batch` counts the labels `[..., 1:]`. HF
//! asks `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()` for the model's class
//! name; trainbox reads the top module's class from the archive and applies
//! a rule that agrees with that mapping on every value of transformers 5.24
//! (a spec test reads the mapping from transformers and checks each).

/// The causal LM classes of transformers whose names the suffix rule does not
/// catch (multimodal models whose causal LM is a `…ForConditionalGeneration`,
/// and two old names).
const EXCEPTIONS: &[&str] = &[
    "BertGenerationDecoder",
    "Gemma3ForConditionalGeneration",
    "Gemma3nForConditionalGeneration",
    "Gemma4ForConditionalGeneration",
    "Gemma4UnifiedForConditionalGeneration",
    "GotOcr2ForConditionalGeneration",
    "MossTranscribeDiarizeForConditionalGeneration",
];

/// Classes whose names end as a causal LM's but are not one (Flaubert's LM
/// head is a masked LM's).
const NOT_CAUSAL: &[&str] = &["FlaubertWithLMHeadModel"];

/// The name endings of transformers' causal LM classes.
const SUFFIXES: &[&str] = &["ForCausalLM", "LMHeadModel", "WithLMHead"];

/// Whether `class` (a bare class name, `GPT2LMHeadModel`, or a qualified
/// TorchScript one, `__torch__.transformers.models.gpt2.GPT2LMHeadModel`) is
/// one of transformers' causal LM classes, as HF's Trainer decides that a
/// model shifts its labels.
pub fn is_causal_lm_class(class: &str) -> bool {
    let name = class.rsplit('.').next().unwrap_or(class);
    (SUFFIXES.iter().any(|s| name.ends_with(s)) && !NOT_CAUSAL.contains(&name))
        || EXCEPTIONS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_lm_names_and_others() {
        assert!(is_causal_lm_class("GPT2LMHeadModel"));
        assert!(is_causal_lm_class("__torch__.parity.LlamaForCausalLM"));
        assert!(is_causal_lm_class("ReformerModelWithLMHead"));
        assert!(is_causal_lm_class("Gemma3ForConditionalGeneration"));
        assert!(!is_causal_lm_class("T5ForConditionalGeneration"));
        assert!(!is_causal_lm_class("BertForSequenceClassification"));
        assert!(!is_causal_lm_class("__torch__.CausalLM"));
        assert!(!is_causal_lm_class("FlaubertWithLMHeadModel"));
    }
}
