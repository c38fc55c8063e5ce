"""Issue 16, "never a traceback, never a lost file": the CLI driven with hostile input.

Output files are never written over without --overwrite and never over the command's own
inputs; markup in user strings is printed as text; the experiments journal goes where the
user says; an unknown --set key gets a short line; damaged or malicious run files give one
line; a full disk gives one line and leaves the old file as it was."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnrecipe.plan import KEYS

PICKLE_BOMB = """
import os, sys, torch
class Boom:
    def __reduce__(self):
        return (os.system, ("echo PWNED > " + sys.argv[2],))
torch.save({"w": Boom()}, sys.argv[1])
"""


def _copy_run(trained_run, tmp_path: Path) -> tuple[Path, Path]:
    run, data = trained_run
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst, data


# ---- 1. no silent overwrite ----------------------------------------------------------------
def test_predict_refuses_to_write_over_its_own_input(cli, bad_input, trained_run, tmp_path):
    run, data = trained_run
    own = tmp_path / "data.csv"
    shutil.copy(data, own)
    before = own.read_bytes()
    for extra in ((), ("--overwrite",)):
        r = cli("predict", run, own, "--out", own, *extra)
        bad_input(r, str(own))
        assert own.read_bytes() == before
    link = tmp_path / "link.csv"  # another name for the input: still the input
    link.symlink_to(own)
    r = cli("predict", run, own, "--out", link, "--overwrite")
    bad_input(r, str(link), "input")
    assert own.read_bytes() == before and link.is_symlink()


def test_predict_refuses_an_existing_file_unless_overwrite(cli, bad_input, trained_run,
                                                           tmp_path):
    run, data = trained_run
    mine = tmp_path / "mine.csv"
    mine.write_text("precious\n")
    r = cli("predict", run, data, "--out", mine)
    bad_input(r, str(mine), "--overwrite")
    assert mine.read_text() == "precious\n"
    r = cli("predict", run, data, "--out", mine, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert mine.read_text().startswith("prediction")
    r = cli("predict", run, data, "--out", tmp_path / "new.csv")  # a new file needs nothing
    assert r.returncode == 0, r.stderr


def test_evaluate_refuses_an_existing_file_and_its_inputs(cli, bad_input, trained_run, tmp_path):
    run, data = trained_run
    mine = tmp_path / "metrics.json"
    mine.write_text("{}")
    r = cli("evaluate", run, data, "--out", mine)
    bad_input(r, str(mine), "--overwrite")
    assert mine.read_text() == "{}"
    before = data.read_bytes()
    r = cli("evaluate", run, data, "--out", data, "--overwrite")
    bad_input(r, str(data))
    assert data.read_bytes() == before
    r = cli("evaluate", run, data, "--out", mine, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert "metrics" in json.loads(mine.read_text())


@pytest.mark.parametrize("command", ["predict", "evaluate", "compare"])
def test_out_inside_the_run_directory_is_refused(cli, bad_input, trained_run, tmp_path,
                                                 command):
    run, data = _copy_run(trained_run, tmp_path)
    target = run / "plan.yaml"
    before = target.read_bytes()
    args = ("compare", run, run) if command == "compare" else (command, run, data)
    r = cli(*args, "--out", target, "--overwrite")
    bad_input(r, str(target), "run directory")
    assert target.read_bytes() == before
    r = cli(*args, "--out", run / "new.csv", "--overwrite")  # not over a file, still inside
    bad_input(r, "run directory")
    assert not (run / "new.csv").exists()


def test_compare_refuses_an_existing_file_unless_overwrite(cli, bad_input, trained_run,
                                                           tmp_path):
    run, _ = trained_run
    mine = tmp_path / "existing.csv"
    mine.write_text("a,b\n1,2\n")
    r = cli("compare", run, run, "--out", mine)
    bad_input(r, str(mine), "--overwrite")
    assert mine.read_text() == "a,b\n1,2\n"
    r = cli("compare", run, run, "--out", mine, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert "<html" in mine.read_text()


@pytest.mark.parametrize("command", ["predict", "evaluate", "compare"])
def test_out_that_is_a_directory_is_one_line(cli, bad_input, trained_run, tmp_path, command):
    run, data = trained_run
    folder = tmp_path / "folder"
    folder.mkdir()
    args = ("compare", run, run) if command == "compare" else (command, run, data)
    for extra in ((), ("--overwrite",)):
        bad_input(cli(*args, "--out", folder, *extra), str(folder), "directory")
    assert folder.is_dir()


def test_out_under_a_file_is_one_line(cli, bad_input, trained_run, tmp_path):
    run, data = trained_run
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    bad_input(cli("predict", run, data, "--out", blocker / "p.csv"), "blocker")
    assert blocker.read_text() == "x"


def test_train_out_still_refuses_a_non_empty_directory(cli, bad_input, data_csv, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = cli("train", data_csv, "--target", "y", "--out", out)
    assert r.returncode == 2 and "already exists" in r.stderr, r.stderr
    assert (out / "keep.txt").read_text() == "mine"


# ---- 2. markup in user strings ---------------------------------------------------------------
def test_markup_in_columns_and_labels_is_printed_as_text(cli, frame, csv, tmp_path):
    df = frame()
    df["[/]"] = df["y"].astype(float)  # a leak the doctor names: the column in a finding
    df["y"] = df["y"].map({1: "<b>yes</b>", 0: "[/]no"})
    data = csv("[bold]markup[red].csv", df)  # no "/" in a file name: markup that hides
    out = tmp_path / "[red]run[/]"
    r = cli("train", data, "--target", "y", "--max-epochs", "2", "--out", out)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "[/]=1" in r.stdout and "[red]run[/]" in r.stdout  # the leak's evidence
    summary = (out / "summary.md").read_text()
    assert "<b>" not in summary and "&lt;b&gt;yes&lt;/b&gt;" in summary
    assert "\\[/\\]" in summary
    r = cli("evaluate", out, data)
    assert r.returncode == 0, r.stderr
    assert "[bold]markup[red].csv" in "".join(r.stdout.split())  # the title may wrap
    r = cli("predict", out, data, "--out", tmp_path / "[/]p.csv")
    assert r.returncode == 0 and "[/]p.csv" in r.stdout, r.stderr
    r = cli("plan", data, "--target", "y")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_markup_hypothesis_and_the_journal_flag(cli, bad_input, data_csv, tmp_path):
    deep = tmp_path / "somewhere" / "else"
    r = cli("experiment", data_csv, "--target", "y", "--hypothesis", "dropout [/] helps",
            "--change", "model.width=4", "--repeats", "2", "--max-epochs", "1",
            "--out", deep / "exp", "-q")
    assert r.returncode == 0, r.stderr
    assert not (deep / "experiments.jsonl").exists()  # not beside --out
    journal = tmp_path / "runs" / "experiments.jsonl"  # but in ./runs/
    entry = json.loads(journal.read_text().splitlines()[-1])
    assert entry["hypothesis"] == "dropout [/] helps" and entry["run_dir"] == str(deep / "exp")
    r = cli("experiments")
    assert r.returncode == 0 and "dropout [/] helps" in r.stdout, r.stderr
    r = cli("experiments", "--root", tmp_path / "runs")
    assert r.returncode == 0 and "dropout [/] helps" in r.stdout, r.stderr

    mine = tmp_path / "[b]my[/b] journal.jsonl"
    r = cli("experiment", data_csv, "--target", "y", "--hypothesis", "[bold]wider[/] is same",
            "--change", "model.width=8", "--expect", "same", "--repeats", "2",
            "--max-epochs", "1", "--out", tmp_path / "exp2", "--journal", mine)
    assert r.returncode == 0, r.stderr
    assert "[bold]wider[/] is same" in r.stdout and str(mine) in r.stdout
    assert len(journal.read_text().splitlines()) == 1 and mine.is_file()
    r = cli("experiments", "--journal", mine)
    assert r.returncode == 0 and "[bold]wider[/] is same" in r.stdout, r.stderr
    assert "dropout" not in r.stdout
    bad_input(cli("experiments", "--journal", tmp_path / "none.jsonl"), "none.jsonl")
    mine.write_text(mine.read_text() + "{not json\n")
    bad_input(cli("experiments", "--journal", mine), "line 2")


# ---- 4. an unknown --set key -------------------------------------------------------------------
def test_unknown_set_key_names_the_closest_and_is_short(cli, bad_input, data_csv, tmp_path):
    r = cli("train", data_csv, "--target", "y", "--set", "optimizer.learning_rate=0.1",
            "--set", "model.dropout=2", "--out", tmp_path / "run")
    line = bad_input(r, "'optimizer.learning_rate'", "did you mean", "nnrecipe plan",
                     "'model.dropout'", out=tmp_path / "run", cwd=tmp_path)
    assert len(line) < 300 and ", ".join(list(KEYS)[:5]) not in line


# ---- 5. damaged or malicious run files ------------------------------------------------------
def _spoil(run: Path, kind: str, tmp_path: Path) -> tuple[str, Path]:
    if kind == "truncated":
        model = run / "model.pt"
        model.write_bytes(model.read_bytes()[:100])
        return "model.pt", tmp_path / "never"
    if kind == "pickle":
        marker = tmp_path / "PWNED"
        subprocess.run([sys.executable, "-c", PICKLE_BOMB, str(run / "model.pt"), str(marker)],
                       check=True)
        return "model.pt", marker
    marker = tmp_path / "HI"
    (run / "plan.yaml").write_text(f'!!python/object/apply:os.system ["echo hi > {marker}"]\n')
    return "plan.yaml", marker


@pytest.mark.parametrize("kind", ["truncated", "pickle", "yaml_tag"])
@pytest.mark.parametrize("command", ["predict", "evaluate", "report"])
def test_damaged_or_malicious_run_files_give_one_line(cli, bad_input, trained_run, tmp_path,
                                                      command, kind):
    run, data = _copy_run(trained_run, tmp_path)
    name, marker = _spoil(run, kind, tmp_path)
    report = (run / "report.html").read_bytes()
    r = cli(command, run, *(() if command == "report" else (data,)))
    line = bad_input(r, str(run / name))
    assert "weights_only" not in line and "Unsupported global" not in line  # torch's advice
    assert any(w in line for w in ("unreadable", "unsafe", "cannot be read")), line
    assert not marker.exists()  # nothing in the file ran
    assert (run / "report.html").read_bytes() == report


# ---- 6. a full disk ------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs at tmp_path/disk, unmounted afterwards (needs root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_full_disk_gives_one_line_and_keeps_the_old_file(cli, bad_input, trained_run, tmp_path,
                                                        small_disk):
    run, data = trained_run
    old = small_disk / "pred.csv"
    old.write_text("old predictions\n")
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill the disk to the last byte
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    r = cli("predict", run, data, "--out", old, "--overwrite")
    bad_input(r, str(old), "full")
    assert old.read_text() == "old predictions\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "pred.csv"]
    r = cli("train", data, "--target", "y", "--max-epochs", "1", "-q", "--out", small_disk / "run")
    bad_input(r, "full")


# ---- unit tests: the pieces behind the lines above -------------------------------------------
@pytest.mark.parametrize("code,words", [(errno.ENOSPC, "disk is full"),
                                        (errno.EDQUOT, "quota"), (errno.EROFS, "read-only"),
                                        (errno.EACCES, "permission denied")])
def test_a_failed_write_is_one_line_leaves_no_temp_and_keeps_the_old_file(tmp_path, monkeypatch,
                                                                          code, words):
    from nnrecipe import runs
    from nnrecipe.errors import RunError

    path = tmp_path / "pred.csv"
    path.write_text("old\n")

    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(runs.os, "fsync", fail)
    with pytest.raises(RunError) as e:
        runs.atomic_write_text(path, "new\n")
    assert str(path) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, OSError) and e.value.errno == code  # the cause stays readable
    assert path.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [path]


def test_findings_table_prints_markup_as_text():
    from io import StringIO

    from rich.console import Console

    from nnrecipe.doctor.findings import Finding, findings_table

    f = Finding(code="data.leak", severity="error", title="'[/]' predicts [bold]y",
                evidence={"column": "[/]", "score.[red]x": 1.0}, explanation="[/]",
                advice=["drop '[/]'"], layer="[/]")
    console = Console(file=StringIO(), width=200)
    console.print(findings_table([f], advice=True))
    text = console.file.getvalue()
    assert "'[/]' predicts [bold]y" in text and "score.[red]x=1.0" in text
    assert "drop '[/]'" in text


def test_summary_markdown_text_keeps_user_strings_as_text():
    from nnrecipe.report.summary import md_code, md_text

    assert md_text("<b>yes</b> & [x](y) *a* b_c |\n# h") == (
        "&lt;b&gt;yes&lt;/b&gt; &amp; \\[x\\](y) \\*a\\* b\\_c \\| \\# h")
    assert md_code("runs/a`b") == "``runs/a`b``" and md_code("runs/x") == "`runs/x`"
