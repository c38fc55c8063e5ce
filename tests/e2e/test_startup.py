"""Fast to answer (issue 14): `--help`, a typo or a bad option never load torch or any other
heavy library; `predict` loads the network and its preprocessing, not the trainer, the
doctor's checks or the report; and every run says where its time went (environment.json,
the report's Reproduce section, `train --verbose`). Speed itself is measured in
benchmarks/startup.py and benchmarks/stages.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_frame, run_cli, write_csv
from nnrecipe.plan import KEYS

HEAVY = ("torch", "sklearn", "pandas", "numpy", "matplotlib", "scipy", "optuna", "cleanlab",
         "jinja2")
TRAINING = ("sklearn", "matplotlib", "scipy", "optuna", "cleanlab", "jinja2",
            "nnrecipe.doctor.preflight", "nnrecipe.report.html", "nnrecipe.pipeline.supervise")
STAGES = {"imports", "load", "profile", "plan", "preflight", "epochs", "after_training",
          "evaluation", "save", "report", "total"}

PROBE = """
import sys
sys.argv = ["nnrecipe", *{args!r}]
from nnrecipe.cli import main
code = 0
try:
    main()
except SystemExit as e:
    code = e.code or 0
print("LOADED=" + ",".join(m for m in {watch!r} if m in sys.modules), file=sys.stderr)
print("CODE=" + str(code), file=sys.stderr)
"""


def _probe(args: list[str], watch: tuple[str, ...], cwd: Path) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args, watch=watch)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)
    lines = done.stderr.splitlines()
    loaded = next(ln for ln in lines if ln.startswith("LOADED="))[len("LOADED="):]
    code = int(next(ln for ln in lines if ln.startswith("CODE="))[len("CODE="):])
    return code, [m for m in loaded.split(",") if m], done.stdout + done.stderr


@pytest.mark.parametrize("args,code", [
    (["--help"], 0), (["train", "--help"], 0), (["predict", "--help"], 0),
    (["train", "--no-such-option"], 2), (["trian"], 2), (["predict"], 2)])
def test_help_and_argument_errors_load_no_heavy_library(args, code, tmp_path):
    got, loaded, output = _probe(args, HEAVY, tmp_path)
    assert got == code, output
    assert loaded == [], output
    if code == 0:
        assert "Usage" in output


@pytest.fixture(scope="module")
def verbose_run(tmp_path_factory) -> tuple[Path, str]:
    """A small run trained by the CLI with --verbose (3 epochs)."""
    root = tmp_path_factory.mktemp("startup")
    data = write_csv(root / "data.csv", make_frame(n=120))
    done = run_cli("train", data, "-t", "y", "--max-epochs", "3", "--out", root / "run", "-v",
                   cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "run", done.stdout


@pytest.mark.slow
def test_predict_loads_the_network_and_its_preprocessing_only(verbose_run, tmp_path):
    run, _ = verbose_run
    new = write_csv(tmp_path / "new.csv", make_frame(n=40, seed=3).drop(columns="y"))
    code, loaded, output = _probe(["predict", str(run), str(new), "--out",
                                   str(tmp_path / "p.csv")], TRAINING, tmp_path)
    assert code == 0, output
    assert loaded == [], output
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("prediction") and len(lines) == 41


@pytest.mark.slow
def test_a_run_records_where_its_time_went(verbose_run):
    run, stdout = verbose_run
    env = json.loads((run / "environment.json").read_text())
    stages = env["stages"]
    assert STAGES <= set(stages), stages
    assert all(v >= 0 for v in stages.values())
    assert sum(v for k, v in stages.items() if k != "total") <= stages["total"] + 1e-3
    training = json.loads((run / "evaluation.json").read_text())["training"]["seconds"]
    assert stages["epochs"] >= training - 0.01  # the epochs' own clock, inside the stage
    assert "Where the time went" in stdout
    for name in STAGES - {"total"}:
        assert name in stdout
    page = (run / "report.html").read_text()
    assert 'id="stages"' in page and "preflight" in page and "epochs" in page


def test_keys_lists_every_plan_key_with_its_values(tmp_path):
    done = run_cli("keys", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for key in KEYS:
        assert key in done.stdout
    assert KEYS["optimizer.name"].describe().split(",")[0] in done.stdout
