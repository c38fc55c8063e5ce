import json
from pathlib import Path

import pytest
from scipy import stats
from sklearn import datasets

import nnrecipe
from nnrecipe.errors import NnrecipeError, PlanError
from nnrecipe.tune.experiment import append_journal, paired_verdict, read_journal

BASE = [0.80, 0.82, 0.79, 0.81, 0.80]


@pytest.mark.parametrize("changed,expect,verdict", [
    ([0.90, 0.91, 0.88, 0.92, 0.90], "better", "supported"),
    ([0.90, 0.91, 0.88, 0.92, 0.90], "worse", "refuted"),
    ([0.70, 0.71, 0.69, 0.72, 0.70], "worse", "supported"),
    ([0.83, 0.79, 0.80, 0.82, 0.78], "better", "inconclusive"),
    ([0.801, 0.819, 0.791, 0.811, 0.799], "same", "supported"),
    ([0.90, 0.91, 0.88, 0.92, 0.90], "same", "refuted"),
])
def test_verdicts(changed, expect, verdict):
    assert paired_verdict(BASE, changed, expect=expect, higher_is_better=True)["verdict"] \
        == verdict


def test_interval_and_p_value_match_scipy():
    changed = [0.83, 0.84, 0.80, 0.85, 0.81]
    r = paired_verdict(BASE, changed, expect="better", higher_is_better=True)
    d = [c - b for b, c in zip(BASE, changed, strict=True)]
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=sum(d) / len(d), scale=stats.sem(d))
    assert r["ci"] == pytest.approx([lo, hi])
    assert r["p_value"] == pytest.approx(stats.ttest_rel(changed, BASE).pvalue)


def test_lower_is_better_metrics_are_oriented():
    r = paired_verdict([60, 61, 59], [50, 52, 49], expect="better", higher_is_better=False)
    assert r["mean_improvement"] > 0 and r["verdict"] == "supported"


ENTRY = {"time": "2024-01-01T00:00:00", "hypothesis": "h", "changes": {"model.width": 8},
         "expect": "better", "metric": "accuracy", "mean_improvement": 0.1, "ci": [0.0, 0.2],
         "verdict": "inconclusive", "run_dir": "runs/e"}


def test_journal_appends_lines(tmp_path):
    append_journal(tmp_path, {**ENTRY, "a": 1})  # a directory: its experiments.jsonl
    append_journal(tmp_path / "experiments.jsonl", {**ENTRY, "a": 2})  # or the file
    assert [e["a"] for e in read_journal(tmp_path)] == [1, 2]
    append_journal(tmp_path / "notes" / "mine.jsonl", ENTRY)  # any file name
    assert read_journal(tmp_path / "notes" / "mine.jsonl") == [ENTRY]
    with pytest.raises(NnrecipeError, match="no experiments journal"):
        read_journal(tmp_path / "nowhere")


@pytest.mark.parametrize("content,fragment", [
    ("x,y\n1,2\n", "line 1 is not an experiment (not JSON)"),
    ('[1, 2]\n', "a list, not an object"),
    ('{"hypothesis": "h"}\n', "'time' missing"),
    (json.dumps({**ENTRY, "ci": ["a", "b"]}) + "\n", "'ci' is not two numbers"),
])
def test_a_file_that_is_not_a_journal_is_one_line(tmp_path, content, fragment):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(ENTRY) + "\n" + content if "line 1" not in fragment else content)
    with pytest.raises(NnrecipeError, match=r"j\.jsonl line \d") as e:
        read_journal(path)
    assert fragment.replace("line 1 ", "") in str(e.value) and "\n" not in str(e.value)


def test_an_undefined_improvement_reads_back(tmp_path):
    append_journal(tmp_path, {**ENTRY, "mean_improvement": float("nan"),
                              "ci": [float("nan"), float("nan")]})
    assert read_journal(tmp_path)[0]["mean_improvement"] is None


def test_a_journal_that_is_not_one_is_refused_before_any_work(tmp_path):
    df = datasets.load_wine(as_frame=True).frame
    data = tmp_path / "wine.csv"
    df.to_csv(data, index=False)
    before = data.read_bytes()
    with pytest.raises(NnrecipeError, match="wine.csv line 1 is not an experiment"):
        nnrecipe.experiment(df, "target", hypothesis="h", changes={"model.width": 8},
                            out=tmp_path / "x", journal=data)
    assert data.read_bytes() == before and not (tmp_path / "x").exists()


def test_a_planted_obvious_effect_is_supported_and_journaled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default journal: runs/experiments.jsonl from here
    df = datasets.load_wine(as_frame=True).frame
    e = nnrecipe.experiment(df, "target", hypothesis="a learning rate of 1e-7 cannot learn",
                            changes={"optimizer.lr": "1e-7"}, expect="worse", repeats=4,
                            overrides={"train.max_epochs": 30},
                            out=tmp_path / "elsewhere" / "e")
    assert e["verdict"] == "supported" and e["mean_improvement"] < -0.2
    assert len(e["baseline"]) == len(e["changed"]) == 4
    assert e["journal"] == str(Path("runs") / "experiments.jsonl")
    assert not (tmp_path / "elsewhere" / "experiments.jsonl").exists()
    journal = read_journal(tmp_path / "runs")
    assert journal[-1]["run_dir"] == str(tmp_path / "elsewhere" / "e")
    assert journal[-1]["hypothesis"] == "a learning rate of 1e-7 cannot learn"
    assert json.loads((tmp_path / "elsewhere" / "e" / "experiment.json").read_text())[
        "verdict"] == "supported"


@pytest.mark.parametrize("kw,fragment", [
    ({"changes": {}}, "at least one change"),
    ({"changes": {"model.width": 8}, "expect": "faster"}, "--expect must be one of"),
    ({"changes": {"model.width": 8}, "repeats": 1}, "at least 2"),
    ({"changes": {"model.widht": 8}}, "unknown plan key"),
    ({"changes": {"model.width": 8}, "metric": "rmse"}, "--metric for a multiclass task"),
])
def test_bad_experiments_fail_before_any_work(tmp_path, kw, fragment):
    df = datasets.load_wine(as_frame=True).frame
    with pytest.raises(PlanError, match=fragment):
        nnrecipe.experiment(df, "target", hypothesis="h", out=tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()
