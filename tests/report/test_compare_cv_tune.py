"""The leaderboard page, the cross-validation page, and a tuned run's Search section
(from a hand-written tune.json)."""

from __future__ import annotations

import json
import shutil

import pytest
from test_html import _Page, assert_self_contained

from nnrecipe import api
from nnrecipe.errors import RunError
from nnrecipe.report import rebuild


def test_compare_three_runs_ranks_them_and_diffs_two_plans(binary_run, findings_run,
                                                           regression_run, tmp_path):
    out = api.compare([findings_run, binary_run, regression_run], tmp_path / "c.html",
                           diff=(binary_run, findings_run))
    html = out.read_text()
    assert_self_contained(html)
    board = next(t for t in _Page(html).tables if t[0][:2] == ["#", "run"])
    assert [row[1] for row in board[1:]] == ["findings", "binary", "regression"]  # as given
    assert "different main metrics" in html
    for run in (binary_run, findings_run, regression_run):
        assert f'href="{run.name}/report.html"' not in html  # the page is in another folder
    assert html.count('report.html"') == 3 and "../" in html
    assert "Plan differences: binary vs findings" in html
    assert "optimizer.name" in html and "set by the user (--set optimizer.name=sgd)" in html


def test_compare_ranks_by_the_shared_metric(binary_run, findings_run, tmp_path):
    out = api.compare([findings_run, binary_run], tmp_path / "c.html")
    board = next(t for t in _Page(out.read_text()).tables if t[0][:2] == ["#", "run"])
    acc = {r: json.loads((r / "evaluation.json").read_text())["metrics"]["accuracy"]
           for r in (binary_run, findings_run)}
    ranked = sorted(acc, key=acc.get, reverse=True)
    assert [row[1] for row in board[1:]] == [r.name for r in ranked]


@pytest.mark.parametrize("bad", ["one", "missing", "not_a_run", "out_is_dir", "cv"])
def test_compare_refuses_bad_input_and_writes_nothing(bad, binary_run, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "cvdir").mkdir()
    (tmp_path / "cvdir" / "cv.json").write_text("{}")
    out = tmp_path / "c.html"
    runs = {"one": [binary_run], "missing": [binary_run, tmp_path / "nope"],
            "not_a_run": [binary_run, tmp_path / "empty"], "out_is_dir": [binary_run] * 2,
            "cv": [binary_run, tmp_path / "cvdir"]}[bad]
    if bad == "out_is_dir":
        out = tmp_path / "empty"
    with pytest.raises(RunError):
        api.compare(runs, out)
    assert not (tmp_path / "c.html").exists() and not list((tmp_path / "empty").iterdir())


def test_cv_page_lists_folds_with_links_and_mean_vs_baseline(binary_run, tmp_path):
    cv_dir = tmp_path / "cv"
    per_fold = []
    for k in (1, 2):
        shutil.copytree(binary_run, cv_dir / f"fold_{k}")
        ev = json.loads((binary_run / "evaluation.json").read_text())
        per_fold.append({"fold": k, "test_rows": ev["n_rows"], **ev["metrics"]})
    (cv_dir / "fold_2" / "report.html").unlink()
    acc = per_fold[0]["accuracy"]
    summary = {"accuracy": {"mean": acc, "std": 0.0}}
    (cv_dir / "cv.json").write_text(json.dumps({
        "task": "binary", "folds": 2, "seed": 0, "per_fold": per_fold, "summary": summary,
        "baseline_summary": {"accuracy": {"mean": 0.5, "std": 0.0}}}))
    path = api.report(cv_dir)
    html = path.read_text()
    assert path == cv_dir / "report.html" and (cv_dir / "summary.md").is_file()
    assert_self_contained(html)
    assert 'href="fold_1/report.html"' in html and 'href="fold_2/report.html"' not in html
    assert f"{acc:.4g} ± 0" in html and ">0.5<" in html
    assert f"| accuracy | {acc:.4g} ± 0 | 0.5 |" in (cv_dir / "summary.md").read_text()


def tune_json(study: str = "s <i>1</i>") -> dict:
    trials = [
        {"number": 0, "state": "COMPLETE", "value": 0.30, "params": {"model.width": 16},
         "intermediate": {"1": 0.5, "2": 0.3}, "seconds": 1.5, "epochs": 2},
        {"number": 1, "state": "PRUNED", "value": None, "params": {"model.width": 64},
         "intermediate": {"1": 0.9}, "note": "worse than the median"},
        {"number": 2, "state": "COMPLETE", "value": 0.25, "params": {"model.width": 32},
         "intermediate": {"1": 0.4, "2": 0.25}},
        {"number": 3, "state": "FAIL", "value": None, "params": {}, "intermediate": {}},
    ]
    return {"study": study, "storage": "study.journal", "objective": "val_loss",
            "direction": "minimize", "space": {"model.width": {
                "kind": "choice", "choices": [16, 32, 64], "reason": "around 32"}},
            "fixed": {"seed": 0}, "trials": trials,
            "best": {"number": 2, "value": 0.25, "params": {"model.width": 32}}}


def test_a_tuned_run_gets_a_search_section_after_the_plan(binary_run, tmp_path):
    run_dir = tmp_path / "tuned"
    shutil.copytree(binary_run, run_dir)
    (run_dir / "tune.json").write_text(json.dumps(tune_json()))
    html = rebuild(run_dir).read_text()
    order = [html.index(f'<section id="{s}"') for s in ("plan", "search", "training")]
    assert order == sorted(order)
    assert "s &lt;i&gt;1&lt;/i&gt;" in html and "<i>1</i>" not in html
    table = next(t for t in _Page(html).tables if t[0][:2] == ["trial", "state"])
    assert [row[:3] for row in table[1:]] == [["0", "COMPLETE", "0.3"], ["1", "PRUNED", "n/a"],
                                              ["2", "COMPLETE", "0.25"], ["3", "FAIL", "n/a"]]
    assert 'alt="validation loss of every trial"' in html and "worse than the median" in html


def test_a_sparse_tune_json_still_renders(binary_run, tmp_path):
    run_dir = tmp_path / "tuned"
    shutil.copytree(binary_run, run_dir)
    (run_dir / "tune.json").write_text(json.dumps({"study": "x", "trials": [{}]}))
    html = rebuild(run_dir).read_text()
    assert '<section id="search"' in html
