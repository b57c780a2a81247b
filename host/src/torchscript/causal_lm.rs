//! Which TorchScript modules HF's Trainer takes for causal language models,
//! by their class name, as transformers 5.24 decides it in two places:
//!
//! - label smoothing shifts the labels (compares logits `[..., :-1, :]`
//!   with labels `[..., 1:]`) when the class is one of
//!   `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()` ([`is_causal_lm_class`]);
//! - `num_items_in_batch` counts `labels[..., 1:]` when the model's
//!   `loss_type` maps to `ForCausalLMLoss` in `LOSS_MAPPING` and the model is
//!   not an encoder-decoder (`Trainer._loss_shifts_labels`,
//!   [`counts_shifted_labels`]). `loss_type` is the class name when it is a
//!   key of `LOSS_MAPPING`, else the first key found in it, else none: a
//!   `GPT2LMHeadModel` has none, so HF counts its labels unshifted.
//!
//! trainbox reads the top module's class from the archive; spec tests
//! check both rules against transformers' own tables.

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
    let name = bare(class);
    (SUFFIXES.iter().any(|s| name.ends_with(s)) && !NOT_CAUSAL.contains(&name))
        || EXCEPTIONS.contains(&name)
}

/// transformers 5.24's `LOSS_MAPPING` keys, in its order, and whether each
/// maps to `ForCausalLMLoss`.
pub const LOSS_TYPES: &[(&str, bool)] = &[
    ("ForSemanticSegmentation", false),
    ("ForCausalLM", true),
    ("ForMaskedLM", false),
    ("ForQuestionAnswering", false),
    ("ForSequenceClassification", false),
    ("ForImageClassification", false),
    ("ForVideoClassification", false),
    ("ForAudioClassification", false),
    ("ForTokenClassification", false),
    ("ForSegmentation", false),
    ("ForObjectDetection", false),
    ("ForCTC", false),
    ("ForConditionalGeneration", true),
    ("DeformableDetrForObjectDetection", false),
    ("ConditionalDetrForObjectDetection", false),
    ("DabDetrForObjectDetection", false),
    ("GroundingDinoForObjectDetection", false),
    ("MMGroundingDinoForObjectDetection", false),
    ("ConditionalDetrForSegmentation", false),
    ("RTDetrForObjectDetection", false),
    ("RTDetrV2ForObjectDetection", false),
    ("DFineForObjectDetection", false),
    ("Deimv2ForObjectDetection", false),
    ("CsmForConditionalGeneration", true),
    ("LwDetrForObjectDetection", false),
    ("PocketTTSForConditionalGeneration", false),
    ("GradiumPhononTTSForConditionalGeneration", false),
    ("ParakeetForRNNT", false),
    ("ParakeetForTDT", false),
    ("RfDetrForObjectDetection", false),
    ("RfDetrForInstanceSegmentation", false),
];

/// transformers' `…ForConditionalGeneration` classes of encoder-decoder
/// models (their config's `is_encoder_decoder`): their loss type is a causal
/// LM's, but HF counts their labels unshifted. (Their `…ForCausalLM`
/// decoders set `is_encoder_decoder = False` and are counted shifted.)
pub const ENCODER_DECODER: &[&str] = &[
    "BartForConditionalGeneration",
    "BigBirdPegasusForConditionalGeneration",
    "BlenderbotForConditionalGeneration",
    "BlenderbotSmallForConditionalGeneration",
    "CanaryForConditionalGeneration",
    "CohereAsrForConditionalGeneration",
    "DiaForConditionalGeneration",
    "FSMTForConditionalGeneration",
    "Florence2ForConditionalGeneration",
    "LEDForConditionalGeneration",
    "LongT5ForConditionalGeneration",
    "M2M100ForConditionalGeneration",
    "MBartForConditionalGeneration",
    "MT5ForConditionalGeneration",
    "MoonshineForConditionalGeneration",
    "MoonshineStreamingForConditionalGeneration",
    "MusicgenForConditionalGeneration",
    "MusicgenMelodyForConditionalGeneration",
    "MvpForConditionalGeneration",
    "NllbMoeForConditionalGeneration",
    "PLBartForConditionalGeneration",
    "PPFormulaNetForConditionalGeneration",
    "PegasusForConditionalGeneration",
    "PegasusXForConditionalGeneration",
    "Pix2StructForConditionalGeneration",
    "Pop2PianoForConditionalGeneration",
    "ProphetNetForConditionalGeneration",
    "Speech2TextForConditionalGeneration",
    "SwitchTransformersForConditionalGeneration",
    "T5ForConditionalGeneration",
    "T5Gemma2ForConditionalGeneration",
    "T5GemmaForConditionalGeneration",
    "UMT5ForConditionalGeneration",
    "UdopForConditionalGeneration",
    "WhisperForConditionalGeneration",
];

/// The bare class name of `class` (`GPT2LMHeadModel` of
/// `__torch__.transformers.models.gpt2.GPT2LMHeadModel`).
fn bare(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// The `loss_type` transformers gives a model of class `class`: the name
/// itself when it is a key of `LOSS_MAPPING`, else the first key found in
/// it (Python's `re.findall` over the keys joined by `|`: the leftmost
/// position, the first key in order there), else `None`.
pub fn loss_type(class: &str) -> Option<&'static str> {
    let name = bare(class);
    if let Some((key, _)) = LOSS_TYPES.iter().find(|(k, _)| *k == name) {
        return Some(key);
    }
    (0..name.len())
        .filter(|&i| name.is_char_boundary(i))
        .find_map(|i| {
            LOSS_TYPES
                .iter()
                .find(|(k, _)| name[i..].starts_with(k))
                .map(|(k, _)| *k)
        })
}

/// Whether HF's Trainer counts `num_items_in_batch` over `labels[..., 1:]`
/// for a model of class `class` (`_loss_shifts_labels`): its loss type is
/// a causal LM's and it is not an encoder-decoder.
pub fn counts_shifted_labels(class: &str) -> bool {
    let causal = loss_type(class).is_some_and(|t| LOSS_TYPES.iter().any(|(k, c)| *k == t && *c));
    causal && !ENCODER_DECODER.contains(&bare(class))
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

    #[test]
    fn counted_shifted_as_hf_loss_type_says() {
        // GPT-2's class has no loss type: HF counts its labels unshifted.
        assert_eq!(loss_type("GPT2LMHeadModel"), None);
        assert!(!counts_shifted_labels("GPT2LMHeadModel"));
        assert!(counts_shifted_labels("__torch__.x.LlamaForCausalLM"));
        assert!(counts_shifted_labels("LlavaForConditionalGeneration"));
        assert!(!counts_shifted_labels("T5ForConditionalGeneration"));
        assert!(counts_shifted_labels("BartForCausalLM"));
        assert!(!counts_shifted_labels("BertForSequenceClassification"));
        // The leftmost key wins, then the first in order at that place.
        assert_eq!(
            loss_type("XDeformableDetrForObjectDetection"),
            Some("DeformableDetrForObjectDetection")
        );
        assert_eq!(
            loss_type("PocketTTSForConditionalGeneration"),
            Some("PocketTTSForConditionalGeneration")
        );
        assert!(!counts_shifted_labels("PocketTTSForConditionalGeneration"));
    }
}
