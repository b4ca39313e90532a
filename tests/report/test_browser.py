"""A real browser (Debian's chromium through Playwright) opens the self-contained HTML report.

CI installs chromium and playwright (.ci/run) and sets AGOMNI_REQUIRE_BROWSER=1, so there the test
must run; elsewhere it skips and says what is missing. Playwright launches /usr/bin/chromium and
never downloads a browser.
"""

import os
import shutil
from pathlib import Path

import pytest

from agomni.report.render import write_report
from tests.report.test_compare import write_run

CHROMIUM = Path("/usr/bin/chromium")


def _browser_missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (CI installs Debian's chromium with apt-get)"
    if shutil.which("chromium") is None:
        return "chromium is not on PATH"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[browser]')"
    return None


@pytest.fixture
def browser():
    missing = _browser_missing()
    if missing:
        if os.environ.get("AGOMNI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test must run here: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def test_html_report_renders_offline_with_plots_and_rows(tmp_path, browser):
    base = write_run(tmp_path / "early", [0.5, 0.7, 0.6, 0.9, 0.8, 0.4])
    new = write_run(tmp_path / "final", [0.3, 0.5, 0.4, 0.6, 0.5, 0.2])
    (page_path,) = write_report([base, new], tmp_path / "report", ["html"])
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(page_path.resolve().as_uri())
    page.wait_for_load_state("load")
    assert errors == [] and requests == []  # no console errors, nothing fetched from a network
    plots = page.locator("figure.plot svg")
    assert plots.count() >= 3  # metric per system, per-item distribution, comparison interval
    for i in range(plots.count()):
        box = plots.nth(i).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    rows = page.locator("table.results tbody tr").all_inner_texts()
    assert any(r.startswith("early\tkl_panns") for r in rows) and any(
        r.startswith("final\tkl_panns") for r in rows
    )
    assert "better" in page.locator("table.comparison").inner_text()
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 0
