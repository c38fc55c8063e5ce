"""Text: a table with a free-text column and a label column (``--modality text``). A
vocabulary from the training texts (ids 0 = padding, 1 = unknown), texts cut at the 95th
percentile of their lengths and batched by length, read by a bidirectional GRU over word
embeddings (a transformer encoder from 20,000 texts).

``--pretrained all-minilm-l6-v2`` starts from a sentence encoder that ships in a package
(models/text_encoder.py): its word-piece tokenizer instead of the vocabulary, its layers as
the network's trunk under a new head, kept, frozen and trained as the transfer table says
(plan/transfer.py), after measuring how alike the texts are to the encoder's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.load import load_table
from ..data.profile import infer_task
from ..data.text import Vocabulary, choose_max_len, find_text_column, length_order, tokenize
from ..errors import DataError
from ..models.text_encoder import (
    SentenceEncoderNet,
    adopt_encoder,
    build_text_encoder,
    embedding_probe,
    encode_texts,
    split_word_share,
    text_encoder_for,
    text_lengths,
)
from ..plan.network_rules import RNN_RULES, compose_rules, const, dropout_rule
from ..plan.rules import Ctx, Decision
from ..plan.schema import Plan
from ..plan.transfer import text_transfer_rules
from ..tune.search import Dim, rnn_dims
from .base import Inputs, Prepared, seeded_build
from .samples import ClassModality, SampleEncoder, Samples, SampleSplits

__all__ = ["TextEncoder", "TextModality"]

LARGE_TEXT = 20_000  # texts from which a transformer beats a recurrent network
PROBE = 512  # training texts the similarity probe reads (as for convnets)


class TextEncoder(SampleEncoder):
    """Token ids cut or padded to ``max_len``: from the training texts' vocabulary, or from
    a packaged encoder's word-piece tokenizer (``state["pretrained"]``: its name)."""

    @property
    def vocab_size(self) -> int | None:
        return self.state["vocab_size"]

    @property
    def input_shape(self) -> list[int]:
        return [self.state["max_len"]]

    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        s = self.state
        texts = list(data.x[pos])
        if s.get("pretrained"):
            ids = encode_texts(s["pretrained"], texts, s["max_len"])
        else:
            ids = Vocabulary.from_dict(s["vocab"]).encode(texts, s["max_len"])
        return torch.from_numpy(ids), data.y[pos]


def arch_rule(ctx: Ctx) -> Decision:
    if ctx.n_train >= LARGE_TEXT:
        return Decision("transformer", f"{ctx.n_train} texts: enough for a small transformer "
                        "encoder", "model.arch_by_modality")
    return Decision("gru", f"{ctx.n_train} texts (< {LARGE_TEXT:,}): a GRU over word "
                    "embeddings; transformers need more data (Vaswani et al. 2017 trained on "
                    "millions)", "model.arch_by_modality")


def max_len_rule(ctx: Ctx) -> Decision:
    n = ctx.profile.inputs["max_len"]
    return Decision(n, f"{n} tokens: the 95th percentile of the texts' lengths (longer texts "
                    "are cut)", "text.max_len")


def embedding_rule(ctx: Ctx) -> Decision:
    v = ctx.profile.inputs.get("vocab_size", 0)
    d = 32 if v < 5000 else 64
    return Decision(d, f"{d}-dimensional word embeddings for a vocabulary of {v:,} words",
                    "model.embedding_dim")


def _column(ctx: Ctx) -> str:
    return f"text: column '{ctx.profile.inputs.get('text_column')}' holds free text"


# --- with a packaged sentence encoder (--pretrained) ----------------------------------------
def encoder_max_len_rule(ctx: Ctx) -> Decision:
    p = ctx.profile.inputs["pretrained"]
    n, most = p["max_len"], p["max_seq_length"]
    return Decision(n, f"{n} word pieces: the 95th percentile of the texts' lengths in the "
                    f"encoder's word pieces, [CLS] and [SEP] included (it reads at most {most}; "
                    "longer texts are cut)", "text.max_len_pieces")


def encoder_dropout_rule(ctx: Ctx) -> Decision:
    return Decision(0.1, "dropout 0.1 before the new head, the encoder's own rate "
                    "(hidden_dropout_prob in its configuration)", "model.dropout_packaged")


def encoder_activation_rule(ctx: Ctx) -> Decision:
    return Decision("gelu", "the encoder's GELU inside its layers, fixed; the new head is "
                    "linear", "model.packaged")


def encoder_clip_rule(ctx: Ctx) -> Decision:
    if ctx["transfer.strategy"] in ("fine_tune", "retrain"):
        return Decision("global_norm", "the encoder's layers learn: clip the global gradient "
                        "norm, as BERT's fine-tuning does at 1.0 (Devlin et al. 2019)",
                        "train.grad_clip_transformer")
    return Decision("none", "only the new head learns, on fixed features: no deep path for "
                    "gradients to explode along", "train.grad_clip")


ENCODER_RULES = (
    ("data.modality", lambda ctx: Decision("text", _column(ctx), "data.modality"), True),
    ("text.max_len", encoder_max_len_rule, False),
    ("text.batching", const("by_length", "each batch holds texts of similar length, in random "
                            "batch order: little padding to read or mask",
                            "text.bucket_by_length"), True),
)
ENCODER_REPLACES = {"model.activation": encoder_activation_rule,
                    "train.grad_clip.kind": encoder_clip_rule}


class TextModality(ClassModality):
    name = "text"
    encoder = TextEncoder
    encoder_keys = ("text.max_len", "text.min_freq")
    own_rules = (
        ("data.modality", lambda ctx: Decision("text", _column(ctx), "data.modality"), True),
        ("text.max_len", max_len_rule, False),
        ("text.min_freq", const(2, "a word seen once gets the 'unknown' id: it cannot be "
                                "learned from one example", "text.min_freq"), False),
        ("text.batching", const("by_length", "each batch holds texts of similar length, in "
                                "random batch order: little padding to read or mask",
                                "text.bucket_by_length"), True),
        ("model.arch", arch_rule, False),
        ("model.embedding_dim", embedding_rule, False),
        *RNN_RULES,
        ("model.bidirectional", const(True, "read the text both ways: a word's meaning "
                                      "depends on what follows too", "model.bidirectional"),
         False),
        ("model.heads", const(4, "4 attention heads (transformer only)", "model.heads"), False),
        ("model.dropout", dropout_rule, False),
    )


    def search_space(self, plan: Plan) -> list[Dim]:
        return [] if "transfer.source" in plan else rnn_dims(plan)  # a pretrained shape

    def plan_rules(self, table_rules: tuple, pretrained: dict | None) -> list:
        """With a packaged encoder: its tokenizer's length rule, its architecture (fixed),
        the transfer rules of plan/transfer.py and its own dropout, in place of the
        vocabulary and recurrent network rules."""
        if pretrained is None:
            return super().plan_rules(table_rules, None)
        transfer, same = text_transfer_rules(pretrained)
        own = (*ENCODER_RULES, *((k, rule, True) for k, rule in same.items()), *transfer,
               ("model.dropout", encoder_dropout_rule, False))
        return compose_rules(table_rules, own, self.table_only, ENCODER_REPLACES, None)

    def build(self, plan: Plan, encoder: Any, pretrained: Any = None) -> torch.nn.Module:
        if "transfer.source" not in plan:
            return super().build(plan, encoder, pretrained)
        return seeded_build(lambda: text_encoder_for(plan), plan["seed"])

    def inputs(self, prep: Prepared) -> Inputs:
        """The tensors; a frozen packaged encoder embeds the training and validation texts
        once, here, before training (SentenceEncoderNet.precompute)."""
        out = super().inputs(prep)
        if isinstance(prep.model, SentenceEncoderNet):
            prep.model.precompute(out.x_train)
            prep.model.precompute(out.x_val)
        return out

    def adopt_pretrained(self, data: Samples, source: Any) -> Any:
        """A packaged sentence encoder (``--pretrained all-minilm-l6-v2``); its tokenizer
        measures the texts' lengths in word pieces."""
        return adopt_encoder(str(source), list(data.x))

    def measure_similarity(self, prep: Prepared) -> dict[str, Any]:
        """How alike the training texts are to the encoder's: the share of their words its
        vocabulary does not hold whole, and whether its sentence embeddings separate the
        classes at least as well as a bag of words (models/text_encoder.py), on up to
        PROBE training texts (the embeddings through every block of the encoder)."""
        plan, data, train = prep.plan, prep.data, prep.splits.train
        name = plan["transfer.source"]
        words = split_word_share(name, list(data.x[train]))
        rng = np.random.default_rng(plan["seed"])
        probe = np.sort(rng.choice(train, size=min(PROBE, len(train)), replace=False))
        model = seeded_build(lambda: build_text_encoder(name, 2), plan["seed"])  # frozen
        x, y = prep.preprocessor.encode(data, probe)
        model.precompute(x)
        emb = model.features(x)  # kept by precompute
        return {"divergence": words["split"], "fertility": words["fertility"],
                "probe": embedding_probe(emb.numpy(), list(data.x[probe]), y, plan["seed"])}

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        df = load_table(source)
        if target is None or target not in df.columns:
            raise DataError(f"give --target, the label column (columns: "
                            f"{', '.join(map(str, df.columns))})")
        df = df[df[target].notna()]
        column = find_text_column(df, target)
        if column is None:
            raise DataError("no free-text column found (strings of several words, mostly "
                            "unique); for a table of features leave out --modality")
        task, why = infer_task(df[target])
        if task == "regression":
            raise DataError(f"text regression is not supported; '{target}' must hold classes")
        texts = df[column].fillna("").astype(str).tolist()
        codes, classes = pd.factorize(df[target].astype(str), sort=True)
        lengths = [len(tokenize(t)) for t in texts]
        vocab = Vocabulary().fit(texts, min_freq=2)
        info = {"text_column": column, "max_len": choose_max_len(lengths),
                "vocab_size": len(vocab), "mean_tokens": float(np.mean(lengths))}
        return Samples("text", np.asarray(texts, dtype=object), codes.astype(np.int64),
                       list(classes), [f"row {i}" for i in df.index], target, task, why, info)

    def read_for_run(self, source: Any, state: dict[str, Any], labelled: bool) -> Samples:
        df = load_table(source)
        target = state["target"]
        need = [state["text_column"]] + ([target] if labelled else [])
        lacking = [c for c in need if c not in df.columns]
        if lacking:
            raise DataError(f"{source} lacks the column(s) {', '.join(lacking)} the run "
                            f"reads; its columns: {', '.join(map(str, df.columns))}")
        if labelled:
            df = df[df[target].notna()]
        codes, classes = (pd.factorize(df[target].astype(str), sort=True) if labelled
                          else (np.zeros(len(df), dtype=np.int64), [""]))
        return Samples("text", df[state["text_column"]].fillna("").astype(str).to_numpy(object),
                       np.asarray(codes, dtype=np.int64), list(classes),
                       [f"row {i}" for i in df.index], target, state["task"], "", {})

    def like(self, x: np.ndarray, ref: np.ndarray, where: str) -> np.ndarray:
        return x  # texts of any length

    def duplicates(self, data: Samples) -> int:
        return len(data.x) - len({str(v) for v in data.x})

    def fit_features(self, data: Samples, train: np.ndarray, plan: Plan) -> TextEncoder:
        state = SampleEncoder.base_state(data)
        state.update(max_len=plan["text.max_len"], text_column=data.info["text_column"])
        if "transfer.source" in plan:  # the packaged encoder's word pieces
            state.update(pretrained=plan["transfer.source"], vocab_size=None)
            return TextEncoder(state)
        vocab = Vocabulary().fit(list(data.x[train]), min_freq=plan["text.min_freq"])
        state.update(vocab=vocab.to_dict(), vocab_size=len(vocab))
        return TextEncoder(state)

    def order(self, data: Samples, splits: SampleSplits, plan: Plan) -> Any:
        """Batches of similar length carry little padding."""
        texts = list(data.x[splits.train])
        counts = (text_lengths(plan["transfer.source"], texts) if "transfer.source" in plan
                  else [len(tokenize(t)) for t in texts])
        return length_order([min(n, plan["text.max_len"]) for n in counts])

    def worst_extra(self, data: Samples, pos: int) -> dict[str, Any]:
        return {"text": str(data.x[pos])[:300]}

    def describe_inputs(self, profile: Any) -> str:
        column = (profile.inputs or {}).get("text_column")
        return f"the text in column '{column}'" if column else super().describe_inputs(profile)
