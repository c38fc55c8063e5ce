"""Training on a CUDA GPU, checked: a table, an image, a text run and an image folder streamed
from disk (``data.loader=stream``: DataLoader workers decode, pinned memory) train with
``train.device=cuda`` and ``train.precision=auto`` (bf16 autocast on a GPU that computes
bf16, fp16 with the gradient scaler otherwise), and the check asserts that every parameter
and every training batch is on the GPU and that the matrix products ran in the reduced
precision; then the same plans train on the CPU in fp32, and their samples/s are compared.

    .venv/bin/python benchmarks/gpu_check.py [--epochs 3] [--rows 20000]

Prints one line per run (precision, samples/s on the GPU and on the CPU, the speed-up, the
last validation loss of each) and exits 1 when a check failed. Without a CUDA GPU it says
so and exits 0. Samples/s: training rows over the median epoch time (training and
validation), the first epoch left out when there are more (it pays for CUDA's start-up).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from torch import nn

from nnrecipe.pipeline.prepare import prepare
from nnrecipe.plan import validate_overrides
from nnrecipe.train import Watcher, fit, make_loss
from nnrecipe.train.streams import Stream

WORDS = ("good great fine nice happy bad awful poor sad grim the a of and to it was is "
         "very quite rather film book meal trip day").split()
CONVS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class DeviceCheck(Watcher):
    """Before each step: the batch and every parameter on ``device``; the output dtypes of
    the linear and convolution layers (autocast's reduced precision) are collected."""

    wants_steps = True

    def __init__(self, device: str):
        self.device, self.steps, self.problems = device, 0, []
        self.dtypes: set[torch.dtype] = set()
        self.hooks: list = []

    def on_train_begin(self, state):
        self.hooks = [m.register_forward_hook(self.record) for m in state.model.modules()
                      if isinstance(m, CONVS)]

    def record(self, module, inputs, output):
        if module.training and isinstance(output, torch.Tensor):
            self.dtypes.add(output.dtype)

    def before_step(self, state):
        self.steps += 1
        where = {t.device.type for t in state.batch}
        if where != {self.device}:
            self.problems.append(f"step {self.steps}: a batch on {sorted(where)}")
        off = [n for n, p in state.model.named_parameters() if p.device.type != self.device]
        if off:
            self.problems.append(f"step {self.steps}: parameters off {self.device}: {off[:3]}")

    def on_train_end(self, state):
        for h in self.hooks:
            h.remove()


def table_source(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 20))
    score = x[:, :5].sum(1) + 0.5 * rng.normal(size=rows)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)])
    df["y"] = (score > 0).astype(int)
    return df


def image_source(folder: Path) -> Path:
    d = load_digits()
    path = folder / "digits.npz"
    np.savez(path, x=(d.images * 16).clip(0, 255).astype(np.uint8), y=d.target)
    return path


def text_source(rows: int) -> pd.DataFrame:
    """Reviews of 8-30 words; the label says whether the happy words outnumber the sad."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for _ in range(rows):
        words = rng.choice(WORDS, size=int(rng.integers(8, 31)))
        texts.append(" ".join(words))
        happy = sum(w in WORDS[:5] for w in words)
        labels.append(int(happy > sum(w in WORDS[5:10] for w in words)))
    return pd.DataFrame({"review": texts, "label": labels})


def folder_source(folder: Path) -> Path:
    """The digits as a folder of PNG files, one subfolder per class (read from disk)."""
    from PIL import Image

    d = load_digits()
    root = folder / "digits_png"
    for i, (img, label) in enumerate(zip(d.images, d.target, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(root / f"{label}/{i}.png")
    return root


def samples_per_second(history, n_train: int) -> float:
    seconds = [e["seconds"] for e in history.epochs]
    return n_train / statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def run(prep, device: str, epochs: int):
    """Train ``prep``'s data on ``device`` (a fresh network from the same plan otherwise);
    (history, the plan, the check)."""
    given = validate_overrides({**prep.overrides, "train.device": device,
                                "train.precision": "auto", "train.max_epochs": epochs,
                                "train.early_stopping.patience": 0})
    p = prep.modality.replan(prep, given)
    inputs = p.modality.inputs(p)
    check = DeviceCheck(device)
    train = inputs.train_data  # tensors, or a stream that reads from disk
    history = fit(p.model, p.plan, train, inputs.val_data,
                  loss_fn=make_loss(p.plan["loss.name"]), val_metrics=inputs.val_metrics,
                  watchers=[check], progress=False, augment=p.augment, order=p.order)
    return history, p.plan, check, len(train) if isinstance(train, Stream) else len(train[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=20_000, help="rows of the table and the text")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else \
            "built without CUDA"
        print(f"no CUDA GPU on this machine (torch {torch.__version__}, {built}): nothing to "
              "check; run this where `nvidia-smi` shows a GPU")
        return 0
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"{torch.cuda.get_device_name(0)}; bf16 in hardware: "
          f"{torch.cuda.is_bf16_supported(including_emulation=False)}")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("table", table_source(args.rows), "y", "table"),
                 ("image", image_source(Path(tmp)), None, "image"),
                 ("text", text_source(args.rows), "label", "text"),
                 ("stream", folder_source(Path(tmp)), None, "image")]
        print(f"{'run':6} {'precision':9} {'GPU samples/s':>14} {'CPU samples/s':>14} "
              f"{'speed-up':>9} {'val loss GPU':>13} {'val loss CPU':>13}")
        for name, source, target, modality in cases:
            more = {"data.loader": "stream"} if name == "stream" else {}
            prep = prepare(source, target, modality=modality,
                           overrides={"train.max_epochs": args.epochs, **more})
            h_gpu, plan, check, n = run(prep, "cuda", args.epochs)
            h_cpu, cpu_plan, _, _ = run(prep, "cpu", args.epochs)
            precision = plan["train.precision"]
            reduced = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
            problems = list(check.problems)
            if check.steps == 0:
                problems.append("no training step ran")
            if reduced is not None and reduced not in check.dtypes:
                problems.append(f"no layer computed in {precision} (saw "
                                f"{sorted(map(str, check.dtypes))})")
            if cpu_plan["train.precision"] != "fp32":
                problems.append(f"the CPU run used {cpu_plan['train.precision']}")
            skipped = sum(e.get("scaler_skipped", 0) for e in h_gpu.epochs)
            gpu, cpu = samples_per_second(h_gpu, n), samples_per_second(h_cpu, n)
            print(f"{name:6} {precision:9} {gpu:14,.0f} {cpu:14,.0f} {gpu / cpu:8.1f}x "
                  f"{h_gpu.epochs[-1]['val_loss']:13.4f} {h_cpu.epochs[-1]['val_loss']:13.4f}"
                  + (f"  ({skipped} fp16 steps skipped)" if skipped else ""))
            for p in problems:
                print(f"  FAILED {name}: {p}")
            failed += problems
    print("every check passed" if not failed else f"{len(failed)} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
