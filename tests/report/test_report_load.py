"""The report reads a run directory through nnrecipe.runs.read_run_files, and the doctor
sits below the report (report imports doctor, never the other way round)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import nnrecipe.doctor
from nnrecipe import api
from nnrecipe.errors import RunError
from nnrecipe.report import write_report
from nnrecipe.report.load import load_run_files
from nnrecipe.report.tables import findings_table
from nnrecipe.runs import RUN_FILES, read_run_files


def test_the_report_sees_what_the_reader_read(findings_run):
    files = read_run_files(findings_run)
    run = load_run_files(findings_run)
    assert run.epochs == files.metrics and len(run.epochs) > 0
    assert [f.to_dict() for f in run.findings] == files.findings
    assert run.repairs == files.repairs and run.monitor == files.monitor
    assert run.evaluation == files.evaluation and run.environment == files.environment
    assert run.plan.to_dict() == files.plan


@pytest.mark.parametrize("name,content", [
    ("evaluation.json", '{"main_metric": '),
    ("metrics.jsonl", '{"epoch": 1}\nnot json\n'),
    ("plan.yaml", "decisions: [\n"),
])
def test_a_damaged_file_stops_the_report_naming_the_file(binary_run, tmp_path, name, content):
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    (run / RUN_FILES["report"]).unlink()
    (run / name).write_text(content)
    with pytest.raises(RunError) as e:
        write_report(run)
    assert name in str(e.value) and "\n" not in str(e.value)
    assert not (run / RUN_FILES["report"]).exists()


def test_compare_names_a_damaged_run(binary_run, regression_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    (run / RUN_FILES["findings"]).write_text("{oops")
    with pytest.raises(RunError, match="findings.json"):
        api.compare([binary_run, run], tmp_path / "c.html")
    assert not (tmp_path / "c.html").exists()


def _imports(path: Path) -> list[str]:
    """The modules a source file imports, relative ones written with their dots."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            out.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_the_doctor_never_imports_the_report():
    doctor = Path(nnrecipe.doctor.__file__).parent
    bad = {}
    for path in doctor.rglob("*.py"):
        depth = len(path.relative_to(doctor).parts) + 1  # ..report from doctor/x.py
        names = [m for m in _imports(path)
                 if m.startswith("nnrecipe.report") or m == "." * depth + "report"
                 or m.startswith("." * depth + "report.")]
        if names:
            bad[str(path.relative_to(doctor))] = names
    assert not bad


def test_the_findings_table_is_the_doctors():
    assert findings_table is nnrecipe.doctor.findings.findings_table
