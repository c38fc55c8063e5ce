"""An image folder read from disk a batch at a time: nnrecipe's stream against a hand-written
PyTorch ``Dataset`` + ``DataLoader``, and peak memory against the number of images.

(a) Speed. The folder is prepared with ``data.loader=stream`` (the plan's image size, batch
size, workers and network); then one epoch of ``nnrecipe.train.fit`` on
``inputs.train_data`` (the PositionStream: DataLoader workers decode, resize and normalise
whole batches) runs against a plain loop: a torch ``Dataset`` whose ``__getitem__`` decodes
one file the same way (PIL, RGB or grey, bilinear resize to the planned size, the same
mean/std), a ``DataLoader`` with the same workers, batch size and shuffling, the same
network (built by nnrecipe for the plan, same initial weights) and Adam at the plan's rate.
Both skip validation and augmentation; the table gives training images per second and the
ratio nnrecipe / hand-written (target ≥ 0.95). The two runs alternate (ours, hand, hand,
ours, ...) so machine noise hits both.

(b) Memory. A child process prepares a folder with ``data.loader=stream``, trains one epoch
and scores the test split; its peak resident memory (the main process, and the largest
DataLoader worker) is compared for a folder a tenth the size and the whole folder (default
2,000 against 20,000 images): with streaming the two should be about the same.

    .venv/bin/python benchmarks/image_folder.py [--images 20000] [--side 128]
        [--dir PATH] [--repeats 3] [--skip-speed] [--skip-memory]

The folder is made once (10 classes of 128-pixel colour PNGs: noise with a class-coloured
bar) in ``--dir`` (default: a temporary folder) and reused when it is already there.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLASSES = 10


def make_folder(root: Path, n: int, side: int, seed: int = 0) -> Path:
    """``n`` PNGs of side×side colour pixels in CLASSES class folders (reused when the
    folder already holds them: a ``.done`` file records what was made)."""
    from PIL import Image

    done = root / ".done"
    want = f"{n} {side} {seed}"
    if done.exists() and done.read_text() == want:
        return root
    rng = np.random.default_rng(seed)
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    colour = rng.integers(120, 256, size=(CLASSES, 3))
    for i in range(n):
        c = i % CLASSES
        px = rng.integers(0, 110, size=(side, side, 3), dtype=np.uint8)
        at = rng.integers(0, side - side // 8)
        px[at:at + side // 8, :, :] = colour[c]
        Image.fromarray(px).save(root / f"class{c}" / f"{i:06d}.png", compress_level=1)
    done.write_text(want)
    return root


def subset(root: Path, n: int) -> Path:
    """A folder of links to the first ``n`` images of ``root`` (as many of each class)."""
    out = root.parent / f"{root.name}_first{n}"
    done = out / ".done"
    if done.exists() and done.read_text() == str(n):
        return out
    for c in range(CLASSES):
        src = sorted((root / f"class{c}").iterdir())[: n // CLASSES]
        (out / f"class{c}").mkdir(parents=True, exist_ok=True)
        for f in src:
            link = out / f"class{c}" / f.name
            if not link.exists():
                link.symlink_to(f)
    done.write_text(str(n))
    return out


def prepared(folder: Path):
    from nnrecipe.pipeline.prepare import prepare

    return prepare(folder, None, overrides={"data.loader": "stream", "train.max_epochs": 1,
                                            "train.early_stopping.patience": 0})


# ---- (a) speed -------------------------------------------------------------------------------
def run_ours(prep, inputs, model: nn.Module) -> float:
    from nnrecipe.train import fit, make_loss

    start = time.perf_counter()
    fit(model, prep.plan, inputs.train_data, None, loss_fn=make_loss(prep.plan["loss.name"]),
        run_dir=None, progress=False)
    return time.perf_counter() - start


class HandFolder(torch.utils.data.Dataset):
    """One image per item, decoded as a tutorial would: open, convert, resize, normalise."""

    def __init__(self, paths: list[str], labels: np.ndarray, mode: str, size: list[int],
                 mean: list[float], std: list[float]):
        self.paths, self.labels, self.mode = paths, labels, mode
        self.size = (size[1], size[0])  # PIL's (width, height)
        self.mean = torch.tensor(mean).reshape(-1, 1, 1)
        self.std = torch.tensor(std).reshape(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            im = im.convert(self.mode)
            if im.size != self.size:
                im = im.resize(self.size, Image.Resampling.BILINEAR)
            a = np.asarray(im).reshape(self.size[1], self.size[0], -1)
        x = torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255
        return (x - self.mean) / self.std, int(self.labels[i])


def run_hand(prep, model: nn.Module) -> float:
    plan, enc, files = prep.plan, prep.preprocessor, prep.data.x
    train = prep.splits.train
    s = enc.state
    ds = HandFolder([files.paths[i] for i in train], prep.data.y[train],
                    "L" if files.grey[0] else "RGB", s["spatial"], s["mean"], s["std"])
    workers = plan["data.workers"]
    loader = torch.utils.data.DataLoader(
        ds, batch_size=plan["train.batch_size"], shuffle=True, num_workers=workers,
        generator=torch.Generator().manual_seed(plan["seed"]), drop_last=False,
        persistent_workers=False, prefetch_factor=2 if workers else None)
    torch.set_num_threads(plan["train.threads"] or torch.get_num_threads())
    torch.manual_seed(plan["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=plan["optimizer.lr"],
                           betas=tuple(plan["optimizer.betas"]))
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def speed(folder: Path, repeats: int) -> dict:
    prep = prepared(folder)
    inputs = prep.modality.inputs(prep)
    initial = copy.deepcopy(prep.model)
    n = len(prep.splits.train)
    threads = torch.get_num_threads()
    # untimed warm-up: the first backward pass in a process pays one-off costs (kernels,
    # allocator, thread pool) that would land on whichever loop runs first
    warm = copy.deepcopy(initial)
    nn.CrossEntropyLoss()(warm(inputs.x_train[:prep.plan["train.batch_size"]]),
                          inputs.y_train[:prep.plan["train.batch_size"]]).backward()
    rates: dict[str, list[float]] = {"nnrecipe stream": [], "hand-written": []}
    for r in range(repeats):
        order = ["nnrecipe stream", "hand-written"]
        for name in order if r % 2 == 0 else order[::-1]:
            model = copy.deepcopy(initial)
            secs = (run_ours(prep, inputs, model) if name == "nnrecipe stream"
                    else run_hand(prep, model))
            torch.set_num_threads(threads)
            rates[name].append(n / secs)
    inputs.train_stream.close()
    p = prep.plan
    return {"n_train": n, "size": "×".join(map(str, prep.preprocessor.state["spatial"])),
            "batch": p["train.batch_size"], "workers": p["data.workers"],
            "threads": p["train.threads"],
            "rates": {k: statistics.median(v) for k, v in rates.items()}}


# ---- (b) memory ------------------------------------------------------------------------------
def child(folder: Path) -> None:
    """Prepare, train one epoch, score: print the peak RSS (MiB) as JSON."""
    import resource

    from nnrecipe.train import fit, make_loss

    prep = prepared(folder)
    inputs = prep.modality.inputs(prep)
    fit(prep.model, prep.plan, inputs.train_data, None,
        loss_fn=make_loss(prep.plan["loss.name"]), run_dir=None, progress=False)
    inputs.train_stream.close()
    ev = prep.modality.score(prep, prep.model, prep.plan, None)
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"images": len(prep.data.x), "main_mib": kib / 1024,
                      "worker_mib": workers / 1024, "accuracy": ev["metrics"]["accuracy"]}))


def peak_rss(folder: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(folder)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the folder is made (and reused); default: a temporary one")
    ap.add_argument("--repeats", type=int, default=3,
                    help="epochs of each loop, alternating; the median rate is shown")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        start = time.perf_counter()
        folder = make_folder(base / f"images{args.images}_{args.side}px", args.images,
                             args.side)
        print(f"folder {folder}: {args.images:,} PNGs of {args.side} px "
              f"({time.perf_counter() - start:.0f} s to make or find); "
              f"torch {torch.__version__}, {os.cpu_count()} CPU cores")
        if not args.skip_speed:
            s = speed(folder, args.repeats)
            ours, hand = s["rates"]["nnrecipe stream"], s["rates"]["hand-written"]
            print(f"\n(a) one epoch, {s['n_train']:,} training images at {s['size']} px, "
                  f"batch {s['batch']}, {s['workers']} worker(s), {s['threads']} thread(s)")
            print(f"{'loop':<18}{'images/s':>10}")
            print(f"{'nnrecipe stream':<18}{ours:>10.1f}")
            print(f"{'hand-written':<18}{hand:>10.1f}")
            print(f"{'ratio':<18}{ours / hand:>10.3f}   (target >= 0.95)")
        if not args.skip_memory:
            small_n = max(CLASSES, args.images // 10)
            rows = [(small_n, peak_rss(subset(folder, small_n))),
                    (args.images, peak_rss(folder))]
            print("\n(b) peak RSS of a child: prepare (stream), one epoch, score the test split")
            print(f"{'images':>8}{'main MiB':>10}{'worker MiB':>12}{'accuracy':>10}")
            for n, r in rows:
                print(f"{n:>8,}{r['main_mib']:>10.0f}{r['worker_mib']:>12.0f}"
                      f"{r['accuracy']:>10.3f}")
            grow = rows[1][1]["main_mib"] / rows[0][1]["main_mib"]
            print(f"{'ratio':>8}{grow:>10.2f}   (target about 1: memory does not grow "
                  "with the images)")


if __name__ == "__main__":
    main()
