"""A real browser opens report.html from disk: headless Chromium (Debian's package, put
in place by `make test`) loads the page with no console error, every image decodes
and takes space on the page, and a full-page screenshot is taken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (`make test` "
                       "installs Debian's chromium; on other systems this test is skipped)"),
]


def open_in_chromium(pages: dict[str, Path], shots: Path) -> dict[str, dict]:
    """Per page: console and page errors, each image's (loaded, natural width, box width,
    box height), the page's height; a full-page screenshot ``shots/<name>.png``. One
    browser for all pages."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    seen = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            for name, path in pages.items():
                seen[name] = _visit(browser, path, shots / f"{name}.png")
        finally:
            browser.close()
    return seen


def _visit(browser, path: Path, screenshot: Path) -> dict:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri(), wait_until="load")
    images = page.evaluate("""() => Array.from(document.images).map(i => {
        const r = i.getBoundingClientRect();
        return [i.complete, i.naturalWidth, r.width, r.height]; })""")
    height = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return {"errors": errors, "images": images, "height": height, "shot": screenshot}


def test_chromium_loads_each_report_without_errors_and_shows_every_image(
        binary_run, regression_run, findings_run, tmp_path):
    shots = Path(os.environ.get("NNRECIPE_SCREENSHOTS", tmp_path))  # to look at them
    shots.mkdir(parents=True, exist_ok=True)
    pages = {"binary": binary_run, "regression": regression_run, "findings": findings_run}
    seen = open_in_chromium({k: v / "report.html" for k, v in pages.items()}, shots)
    for name, s in seen.items():
        assert s["errors"] == [], name
        assert len(s["images"]) >= 3, name
        for complete, natural_width, width, height in s["images"]:
            assert complete and natural_width > 0 and width > 0 and height > 0, name
        assert s["height"] > 2000 and s["shot"].stat().st_size > 50_000, name
