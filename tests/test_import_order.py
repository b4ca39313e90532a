"""Every agomni module imports on its own, whichever is imported first: a module-level import cycle
(e.g. a metric stage importing the evaluate package, whose pipeline imports the stage) fails here."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import agomni

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("agomni.metrics.av.lipsync",)  # needs OpenCV (the `av` extra), imported on first use

CHECK = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "agomni" or m.startswith("agomni.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-1).strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first_in_a_fresh_module_table() -> None:
    names = sorted(
        m.name
        for m in pkgutil.walk_packages(agomni.__path__, "agomni.")
        if not m.name.endswith("__main__") and m.name not in OPTIONAL
    )
    assert "agomni.metrics.speech.eval_stage" in names and "agomni.evaluate.pipeline" in names
    done = subprocess.run(
        [sys.executable, "-c", CHECK, *names], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (absolute names; relative imports resolved from its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_report_reads_run_folders_without_the_runner() -> None:
    """agomni.report sits beside agomni.run: it reads run folders through agomni.results.RunFolder."""
    files = sorted((ROOT / "agomni" / "report").glob("*.py"))
    assert len(files) > 5
    offending = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.startswith("agomni.run"))
        for path in files
    }
    assert not {k: v for k, v in offending.items() if v}, offending
    assert "agomni.results" in _imported_modules(ROOT / "agomni" / "report" / "content.py")


def test_run_and_evaluate_use_the_metric_families_through_their_interface_only() -> None:
    """agomni.run and agomni.evaluate reach the per-item families (speech, audio-visual, text-audio) through
    agomni.metrics.stage.family_stage, never by importing their modules."""
    families = ("agomni.metrics.speech", "agomni.metrics.av", "agomni.metrics.text_audio")
    files = sorted([*(ROOT / "agomni" / "run").glob("*.py"), *(ROOT / "agomni" / "evaluate").glob("*.py")])
    assert len(files) > 15
    offending = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.startswith(families))
        for path in files
    }
    assert not {k: v for k, v in offending.items() if v}, offending
    assert "agomni.metrics.stage.family_stage" in _imported_modules(
        ROOT / "agomni" / "evaluate" / "item_stages.py"
    )
