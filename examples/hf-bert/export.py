"""Export a tiny BERT sequence classifier for `trainbox train --model`, with a
byte-level dataset: is a sentence English (0) or German (1)?

    python export.py OUT_DIR [--n_train 512] [--n_eval 128] [--seed 0]

writes OUT_DIR/model.pt (a traced TorchScript module whose forward takes
`input_ids, attention_mask, labels` and returns `(loss, logits)`, as HF's
`return_dict=False`), OUT_DIR/train.parquet and OUT_DIR/validation.parquet
(`input_ids`: list<int64> of varying length, `labels`: int64; snappy, as
`datasets.Dataset.to_parquet` writes them). There is no attention_mask column:
trainbox pads each batch and makes one, as HF's DataCollatorWithPadding.
Nothing is downloaded: the model is a randomly initialised `BertConfig`, the
sentences are made up here, tokens are 1 (a [CLS] marker) and then UTF-8 bytes.
"""

import argparse
import json
import random
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import transformers
from transformers import BertConfig, BertForSequenceClassification

PAD, CLS = 0, 1  # neither byte occurs in the text


class Classifier(torch.nn.Module):
    """HF's contract for trainbox: columns in by name, (loss, logits) out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels):
        loss, logits = self.model(
            input_ids=input_ids, attention_mask=attention_mask, labels=labels, return_dict=False
        )[:2]
        return loss, logits


# (subjects, predicates, "and") of each language; label 0 English, 1 German.
LANGUAGES = [
    (["the dog", "my brother", "the old house", "our teacher", "the little girl", "the train",
      "her friend", "the weather"],
     ["is very tired", "was happy yesterday", "sleeps in the garden", "reads a book",
      "goes to school", "likes cold water", "is too late again", "stays at home"], "and"),
    (["der Hund", "mein Bruder", "das alte Haus", "unser Lehrer", "das kleine Mädchen", "der Zug",
      "ihre Freundin", "das Wetter"],
     ["ist sehr müde", "war gestern glücklich", "schläft im Garten", "liest ein Buch",
      "geht zur Schule", "mag kaltes Wasser", "ist wieder zu spät", "bleibt zu Hause"], "und"),
]


def example(rng):
    """A made-up sentence of one to three clauses and its language: 0 English, 1 German."""
    label = rng.randrange(2)
    subjects, predicates, conj = LANGUAGES[label]
    clauses = [f"{rng.choice(subjects)} {rng.choice(predicates)}" for _ in range(rng.randint(1, 3))]
    text = f" {conj} ".join(clauses) + "."
    return [CLS] + list((text[0].upper() + text[1:]).encode()), label


def write_parquet(path, rows):
    """`input_ids` (list<int64>, ragged) and `labels` (int64)."""
    ids, labels = zip(*rows)
    table = pa.table({"input_ids": pa.array(ids, type=pa.list_(pa.int64())),
                      "labels": pa.array(labels, type=pa.int64())})
    features = {"input_ids": {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "List"},
                "labels": {"dtype": "int64", "_type": "Value"}}
    table = table.replace_schema_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})})
    pq.write_table(table, path, compression="snappy", row_group_size=1000)


def check(model, traced):
    """The traced module takes other shapes than it was traced with, and
    padding with the mask changes nothing: trainbox pads every batch."""
    ids = torch.randint(2, 256, (3, 29))
    mask = torch.ones_like(ids)
    ids[0, 17:], mask[0, 17:] = PAD, 0
    labels = torch.tensor([1, 0, 1])
    with torch.no_grad():
        (loss, logits), (want, _) = traced(ids, mask, labels), model(ids, mask, labels)
        alone = traced(ids[:1, :17], mask[:1, :17], labels[:1])[1]
    assert torch.allclose(loss, want, atol=1e-5), "the trace froze a shape"
    assert torch.allclose(logits[:1], alone, atol=1e-5), "the trace ignores attention_mask"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n_train", type=int, default=512)
    ap.add_argument("--n_eval", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.out_dir.mkdir(parents=True, exist_ok=True)

    # The tracer warns about Python branches on shapes; none of them change
    # with the batch size or the sequence length here.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.logging.set_verbosity_error()
    torch.manual_seed(a.seed)
    # Dropout 0: a traced module keeps the train/eval mode it was traced in.
    config = BertConfig(vocab_size=256, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128,
                        max_position_embeddings=256, num_labels=2, pad_token_id=PAD,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = Classifier(BertForSequenceClassification(config)).eval()
    # Trace with padding in the batch, so that the mask is part of the graph.
    ids = torch.randint(2, 256, (2, 12))
    mask = torch.ones_like(ids)
    ids[1, 8:], mask[1, 8:] = PAD, 0
    traced = torch.jit.trace(model, (ids, mask, torch.tensor([0, 1])))
    check(model, traced)
    traced.save(str(a.out_dir / "model.pt"))

    rng = random.Random(a.seed)
    write_parquet(a.out_dir / "train.parquet", [example(rng) for _ in range(a.n_train)])
    write_parquet(a.out_dir / "validation.parquet", [example(rng) for _ in range(a.n_eval)])
    print(f"wrote {a.out_dir}/model.pt, train.parquet ({a.n_train} sentences), "
          f"validation.parquet ({a.n_eval})")


if __name__ == "__main__":
    main()
