"""report.html of a classification, a regression and a run with findings: sections in
order, the key numbers, nothing outside the page, every user string escaped."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from _report_data import BOLD, SCRIPT, frame
from sklearn import metrics as skm

import nnrecipe
from nnrecipe.report import render_summary, write_report
from nnrecipe.report.load import load_run_files
from nnrecipe.report.summary import md_text, summary_facts

SECTIONS = ["summary", "data", "plan", "training", "doctor", "evaluation", "reproduce"]


class _Page(HTMLParser):
    """The attributes that can point elsewhere, the tags, and the tables' cell texts."""

    def __init__(self, html: str):
        super().__init__()
        self.links, self.tags, self.tables = [], [], []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [(tag, k, v) for k, v in attrs if k in ("src", "href", "action", "data")]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def assert_self_contained(html: str) -> None:
    parsed = _Page(html)
    for tag, attr, value in parsed.links:
        assert value.startswith(("data:image/png;base64,", "#")) or (
            "://" not in value and not value.startswith("//")), (tag, attr, value[:80])
    assert not {"script", "link", "iframe", "object", "embed"} & set(parsed.tags)
    assert "@import" not in html and "url(" not in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.I)


@pytest.mark.parametrize("name", ["binary_run", "regression_run", "findings_run"])
def test_sections_in_order_self_contained_and_escaped(name, request):
    run_dir = request.getfixturevalue(name)
    html = page(run_dir)
    positions = [html.index(f'<section id="{s}"') for s in SECTIONS]
    assert positions == sorted(positions)
    assert_self_contained(html)
    assert SCRIPT not in html and "alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    imgs = re.findall(r'<img src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', html)
    assert len(imgs) >= 3 and html.count("<img ") == len(imgs)


def test_class_names_are_escaped_everywhere(binary_run):
    html = page(binary_run)
    assert BOLD not in html and "&lt;b&gt;yes&lt;/b&gt;" in html
    summary = (binary_run / "summary.md").read_text()
    assert BOLD not in summary and "&lt;b&gt;yes&lt;/b&gt;" in summary  # text, not HTML


def _fmt(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}g}"


@pytest.mark.parametrize("name", ["binary_run", "regression_run"])
def test_key_numbers_from_evaluation_json_are_on_the_page(name, request):
    run_dir = request.getfixturevalue(name)
    ev = json.loads((run_dir / "evaluation.json").read_text())
    html = page(run_dir)
    for metric, value in ev["metrics"].items():
        assert f">{_fmt(value)}<" in html, metric
    for value in ev["baseline"]["metrics"].values():
        assert f">{_fmt(value)}<" in html
    assert f"<strong>{ev['n_rows']}</strong> held-out test rows" in html
    profile = json.loads((run_dir / "profile.json").read_text())
    assert f'{profile["n_rows"]:,}' in html


def test_threshold_table_matches_scikit_learn(binary_run):
    """Each row of the page's threshold table against precision_recall_curve and
    roc_curve on the test predictions, recomputed from the saved model."""
    test_df = frame().iloc[200:]
    pred = nnrecipe.load_run(binary_run).predict(test_df)
    ev = json.loads((binary_run / "evaluation.json").read_text())
    positive = ev["details"]["binary"]["positive_class"]  # the second class in sorted order
    assert positive == "no"
    y = (test_df["y"] == positive).to_numpy().astype(int)
    score = pred[f"proba_{positive}"].to_numpy()
    precision, recall, pr_thr = skm.precision_recall_curve(y, score)
    fpr, _, roc_thr = skm.roc_curve(y, score, drop_intermediate=False)
    table = next(t for t in _Page(page(binary_run)).tables
                 if t and t[0][:3] == ["threshold", "precision", "recall"])
    assert len(table) == 10
    for row in table[1:]:
        t = float(row[0].split()[0])
        i = np.searchsorted(pr_thr, t)  # the lowest curve threshold >= t
        if i < len(pr_thr):
            assert float(row[1]) == pytest.approx(precision[i], abs=1e-3)
            assert float(row[2]) == pytest.approx(recall[i], abs=1e-3)
            j = np.nonzero(roc_thr >= t)[0][-1]
            assert float(row[4]) == pytest.approx(fpr[j], abs=1e-3)
        else:  # nothing predicted positive at t
            assert row[1] == "n/a" and float(row[2]) == 0
        assert int(row[5]) == int(np.sum((score >= t) & (y == 1)))


def test_residual_plot_for_regression_and_roc_for_binary(binary_run, regression_run):
    reg, clf = page(regression_run), page(binary_run)
    assert "Residuals" in reg and "ROC curve" not in reg and "Confusion matrix" not in reg
    assert "Choosing the decision threshold" in clf and "Confusion matrix" in clf
    assert "Residuals" not in clf
    details = json.loads((regression_run / "evaluation.json").read_text())["details"]
    assert len(details["residuals"]["actual"]) == 40 and len(details["worst_rows"]) == 10


def test_findings_are_cards_marked_on_the_curves_with_the_repairs(findings_run):
    html = page(findings_run)
    findings = json.loads((findings_run / "findings.json").read_text())
    repairs = json.loads((findings_run / "repairs.json").read_text())
    assert html.count('<div class="card ') == len(findings)
    for i, f in enumerate(findings, start=1):
        assert f'id="finding-{i}"' in html and f["code"] in html
    assert any(f["epoch"] for f in findings) and "(marked on the curves)" in html
    assert "Repairs applied (--auto-fix)" in html
    assert html.count("<tr><td>") >= len(repairs)
    assert "Repairs (--auto-fix)" in (findings_run / "summary.md").read_text()


def test_monitor_json_feeds_the_layer_plot(binary_run):
    monitor = json.loads((binary_run / "monitor.json").read_text())
    assert monitor["sample_every"] == 50 and monitor["samples"]
    sample = monitor["samples"][0]
    assert {"step", "epoch", "grad_norm", "dead_share", "attempt"} <= set(sample)
    assert "Gradient norm per layer" not in page(binary_run)  # drawn in the image, not text
    assert 'alt="per-layer gradient norms and dead units over training"' in page(binary_run)


def test_summary_md_is_the_summary_section(binary_run, findings_run):
    for run_dir in (binary_run, findings_run):
        facts = summary_facts(load_run_files(run_dir))
        md = (run_dir / "summary.md").read_text()
        html = page(run_dir)
        for sentence in [facts["predicted"], facts["result"], *facts["risks"]]:
            assert md_text(sentence) in md  # Markdown-escaped: user strings stay text
            assert _escape(sentence) in html
        assert str(run_dir) in md and "majority class" in md


def _escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def test_rebuilding_gives_the_same_page_and_summary(binary_run, tmp_path):
    before = (binary_run / "summary.md").read_text()
    html = page(binary_run)
    path = write_report(binary_run)
    assert path == binary_run / "report.html"
    assert page(binary_run) == html
    assert (binary_run / "summary.md").read_text() == before
    assert render_summary(nnrecipe.load_run(binary_run)).startswith(before.split("\n")[0])


def test_reproduce_section_has_the_command_versions_and_seed(binary_run):
    html = page(binary_run)
    env = json.loads((binary_run / "environment.json").read_text())
    assert env["started_from"] == "Python API"
    assert env["command"].startswith("nnrecipe train DATA --target y")
    for key in ("python", "torch", "nnrecipe"):
        assert env["versions"][key] in html
    assert "seed" in html and env["hardware"]["platform"] in html


def test_an_image_run_shows_its_inputs_and_its_worst_samples(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((120, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, 120)
    x[y == 1, :4] += 0.5  # the top half is brighter in class 1
    np.savez(tmp_path / "pics.npz", x=x, y=y)
    nnrecipe.fit(tmp_path / "pics.npz", out=tmp_path / "run",
                 overrides={"train.max_epochs": 2})
    html = page(tmp_path / "run")
    positions = [html.index(f'<section id="{s}"') for s in SECTIONS]
    assert positions == sorted(positions)
    assert_self_contained(html)
    assert "images of 8×8 pixels" in html and "<h3>Inputs (image)</h3>" in html
    assert "<h3>Columns</h3>" not in html
    assert 'alt="the test samples with the highest loss"' in html and "p(predicted)" in html
