"""The running workbench in a real browser (Playwright driving the system Chromium): it loads, a user is
picked, a search is started from the form and followed, the comparison renders, everything is exported and
the zip downloaded. Saves a screenshot of each page to ``test-artifacts/`` (or ``$PAPREC_ARTIFACTS``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

def assert_not_blank(shot: Path) -> None:
    """A screenshot that shows a page: many distinct shades and a good share of non-background pixels."""
    from PIL import Image, ImageStat

    img = Image.open(shot).convert("L")
    stat = ImageStat.Stat(img)
    hist = img.histogram()
    background = max(hist) / sum(hist)  # share of the most common shade (the page background)
    assert stat.stddev[0] > 8 and background < 0.97 and sum(h > 0 for h in hist) > 32, (
        f"{shot} looks blank: stddev {stat.stddev[0]:.1f}, background share {background:.3f}")


def test_app_in_a_real_browser(chromium, disk_rlm_dir, tmp_path):
    """The new user's path: pick a user, start a search from the form, watch it finish with that user's
    tokens, compare, export and download the zip; a non-blank screenshot of each page."""
    import re
    import zipfile

    from playwright.sync_api import expect, sync_playwright

    from pap_rec_core.workbench_server import start_workbench, stop_workbench

    runs = tmp_path / "runs"
    runs.mkdir()
    artifacts = Path(os.environ.get("PAPREC_ARTIFACTS", REPO / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    proc, url = start_workbench(disk_rlm_dir, runs)

    def number(page, label: str, value: str) -> None:
        field = page.get_by_role("spinbutton", name=label)
        field.fill(value)
        field.press("Tab")  # commit the value (Streamlit reads a number input on blur)

    def shoot(page, name: str) -> None:
        page.wait_for_timeout(500)
        shot = artifacts / f"workbench_{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert_not_blank(shot)

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page.goto(url)
            expect(page.get_by_text("Search runs", exact=True)).to_be_visible()
            shoot(page, "overview")
            sidebar = page.get_by_test_id("stSidebar")
            # pick a user by typing into the searchable picker
            sidebar.get_by_test_id("stSelectbox").filter(has_text="User id").click()
            page.keyboard.type("u3")
            page.keyboard.press("Enter")
            sidebar.get_by_text("Search", exact=True).click()
            number(page, "Shared tokens", "2")
            number(page, "Personal tokens", "1")
            number(page, "Iterations (budget)", "1")
            number(page, "Users (0 = all)", "0")
            number(page, "Candidates per slot (top-k)", "2")
            expect(page.get_by_text("Searches user u3 and every other user")).to_be_visible()
            page.get_by_test_id("stFormSubmitButton").get_by_text("Start search").click()
            expect(page.get_by_text(re.compile(r"— finished"))).to_be_visible(timeout=180_000)
            expect(page.get_by_text("personal slots of user u3")).to_be_visible()
            expect(page.locator(".js-plotly-plot").filter(has_text="Prompt tokens per step")).to_have_count(1)
            assert "user=u3" in page.url and "page=Search" in page.url
            shoot(page, "search")
            sidebar.get_by_text("Compare", exact=True).click()
            expect(page.get_by_text("ground truth at rank").first).to_be_visible(timeout=180_000)
            expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
            shoot(page, "compare")
            export = page.get_by_role("button", name="Export figures and tables")
            expect(export).to_be_enabled()
            page.wait_for_load_state("networkidle")
            export.click()
            zip_button = page.get_by_text(re.compile(r"Download everything"))
            expect(zip_button).to_be_visible(timeout=300_000)
            with page.expect_download() as info:
                zip_button.click()
            archive = tmp_path / info.value.suggested_filename
            info.value.save_as(archive)
            names = zipfile.ZipFile(archive).namelist()
            assert any("u3" in n for n in names) and any(n.endswith(".csv") for n in names), names
            shoot(page, "export")
            browser.close()
    finally:
        stop_workbench(proc)
