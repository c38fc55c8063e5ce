"""The run directory: the table of its files, atomic writes under the caller's umask, and
the one reader."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nnrecipe import runs
from nnrecipe.errors import RunError
from nnrecipe.runs import RUN_DIR, RUN_FILES, RunFiles, read_run_files

OLD_NAMES = {"plan": "plan.yaml", "profile": "profile.json", "metrics": "metrics.jsonl",
             "evaluation": "evaluation.json", "model": "model.pt",
             "preprocess": "preprocess.json", "checkpoints": "checkpoints",
             "summary": "summary.md", "findings": "findings.json", "repairs": "repairs.json",
             "monitor": "monitor.json", "environment": "environment.json",
             "report": "report.html"}


# ---------------------------------------------------------------------- the table

def test_the_old_names_are_kept_and_the_table_is_complete():
    assert {k: RUN_FILES[k] for k in OLD_NAMES} == OLD_NAMES
    assert RUN_FILES == {k: f.name for k, f in RUN_DIR.items()}
    names = set(RUN_FILES.values())
    assert {"lr_find.json", "lr_find.png", "tune.json", "cv.json", "experiment.json",
            "mistakes.png", "study.journal", "tensorboard", "fold_{k}",
            "checkpoints/last.pt", "checkpoints/best.pt", "experiments.jsonl"} <= names
    assert len(names) == len(RUN_FILES)  # no name twice
    for key, f in RUN_DIR.items():
        assert f.about and "\n" not in f.about, key
    assert RUN_FILES["fold"].format(k=2) == "fold_2"


# ---------------------------------------------------------------------- writing

def _umask() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line")


@pytest.mark.skipif(not Path("/proc/self/status").is_file() or os.name != "posix",
                    reason="reads the umask from /proc")
def test_import_and_write_leave_the_umask_alone_and_obey_it(tmp_path):
    """In a fresh process: the umask set before the import is still set after importing
    nnrecipe and writing, and each new file has mode 0o666 less that umask."""
    script = f"""
import os, stat, sys
from pathlib import Path
def umask():
    return next(int(l.split()[1], 8) for l in Path("/proc/self/status").read_text()
                .splitlines() if l.startswith("Umask:"))
out = []
for mask in (0o027, 0o002):
    os.umask(mask)
    import nnrecipe, nnrecipe.runs as runs
    p = Path({str(tmp_path)!r}) / f"f{{mask:o}}.json"
    runs.atomic_write_json(p, {{"a": 1}})
    runs.atomic_write_text(p, "again")  # over an existing file, too
    out.append((umask(), stat.S_IMODE(p.stat().st_mode)))
print(out)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True)
    assert r.stdout.strip() == str([(0o027, 0o666 & ~0o027), (0o002, 0o666 & ~0o002)])


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the umask")
def test_writing_here_keeps_this_process_umask(tmp_path):
    before = _umask()
    runs.atomic_write_bytes(tmp_path / "x.bin", b"1")
    assert _umask() == before
    assert stat.S_IMODE((tmp_path / "x.bin").stat().st_mode) == 0o666 & ~before


def test_no_umask_call_in_the_package():
    src = Path(runs.__file__).parent
    assert not [p for p in src.rglob("*.py") if "os.umask" in p.read_text(encoding="utf-8")]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "plan.yaml"
    runs.atomic_write_text(path, "old")

    def boom(*_):
        raise OSError("disk gone")

    monkeypatch.setattr(runs.os, "replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        runs.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.yaml"]


def test_writing_over_a_directory_is_refused(tmp_path):
    with pytest.raises(RunError, match="is a directory"):
        runs.atomic_write_text(tmp_path, "x")


# ---------------------------------------------------------------------- reading

def _run_dir(root: Path) -> Path:
    d = root / "run"
    runs.prepare_run_dir(d)
    runs.atomic_write_yaml(d / RUN_FILES["plan"], {"decisions": {}, "derived": {}})
    runs.atomic_write_json(d / RUN_FILES["profile"], {"target": "y"})
    runs.atomic_write_json(d / RUN_FILES["preprocess"], {"classes": [0, 1]})
    runs.atomic_write_text(d / RUN_FILES["metrics"],
                           '{"epoch": 1, "train_loss": 0.5}\n\n{"epoch": 2, "val_loss": null}\n')
    runs.atomic_write_json(d / RUN_FILES["evaluation"], {"main_metric": "accuracy"})
    runs.atomic_write_json(d / RUN_FILES["findings"], [{"code": "large_batch"}])
    runs.atomic_write_json(d / RUN_FILES["tune"], {"trials": []})
    runs.atomic_write_bytes(d / RUN_FILES["model"], b"weights")
    runs.atomic_write_bytes(d / RUN_FILES["mistakes"], b"png")
    return d


def test_read_run_files_parses_what_is_there_and_leaves_the_rest_empty(tmp_path):
    d = _run_dir(tmp_path)
    f = read_run_files(d, require=("plan", "model"))
    assert isinstance(f, RunFiles) and f.path == d
    assert f.plan == {"decisions": {}, "derived": {}}
    assert f.profile == {"target": "y"} and f.preprocess == {"classes": [0, 1]}
    assert f.metrics == [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "val_loss": None}]
    assert f.evaluation == {"main_metric": "accuracy"}
    assert f.findings == [{"code": "large_batch"}] and f.tune == {"trials": []}
    assert f.model == d / "model.pt" and f.mistakes_png == d / "mistakes.png"
    assert f.repairs == [] and f.lr_find_png is None
    for name in ("monitor", "environment", "lr_find", "cv", "experiment"):
        assert getattr(f, name) is None, name


def test_an_empty_directory_reads_as_empty(tmp_path):
    f = read_run_files(tmp_path)
    assert f.plan is None and f.metrics == [] and f.findings == [] and f.model is None


@pytest.mark.parametrize("make,fragments", [
    (lambda p: None, ["not found", "nope"]),
    (lambda p: p.write_text("x"), ["is a file, not a directory"]),
])
def test_not_a_directory(tmp_path, make, fragments):
    path = tmp_path / "nope"
    make(path)
    with pytest.raises(RunError) as e:
        read_run_files(path)
    assert all(x in str(e.value) for x in fragments) and "\n" not in str(e.value)


def test_required_files_missing_are_named_in_order(tmp_path):
    (tmp_path / "plan.yaml").write_text("decisions: {}\n")
    with pytest.raises(RunError, match=r"not a finished nnrecipe run: preprocess.json, "
                                       r"model.pt missing"):
        read_run_files(tmp_path, require=("plan", "preprocess", "model"))


@pytest.mark.parametrize("name,content,detail", [
    ("evaluation.json", "{not json", "JSONDecodeError"),
    ("plan.yaml", "a: [1,\n b: {", "ParserError"),
    ("plan.yaml", "", "expected a mapping, found NoneType"),
    ("findings.json", '{"code": 1}', "expected a list of objects"),
    ("metrics.jsonl", '{"epoch": 1}\n{"epoch": 2', "line 2"),
    ("metrics.jsonl", "[1]\n", "line 1: expected an object"),
    ("tune.json", b"\xff\xfe", "UnicodeDecodeError"),
])
def test_a_damaged_file_is_one_line_naming_it(tmp_path, name, content, detail):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(RunError) as e:
        read_run_files(tmp_path)
    msg = str(e.value)
    assert str(path) in msg and detail in msg and "\n" not in msg


def test_cv_and_experiment_files_are_read(tmp_path):
    (tmp_path / RUN_FILES["cv"]).write_text(json.dumps({"folds": 3}))
    (tmp_path / RUN_FILES["experiment"]).write_text(json.dumps({"verdict": "supported"}))
    f = read_run_files(tmp_path, require=("cv",))
    assert f.cv == {"folds": 3} and f.experiment == {"verdict": "supported"}
