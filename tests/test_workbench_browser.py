"""The running workbench in a real browser (Playwright driving the system Chromium): it loads, a user is
picked, the token-evolution figure and the comparison table render. Saves a screenshot to
``test-artifacts/`` (or ``$PAPREC_ARTIFACTS``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

def test_app_in_a_real_browser(chromium, disk_rlm_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from pap_rec_core.rlm.checkpoint import load_rlm_with_split
    from pap_rec_core.search import SearchConfig, run_search
    from pap_rec_core.workbench_server import start_workbench, stop_workbench

    bundle, split = load_rlm_with_split(disk_rlm_dir, device="cpu")
    runs = tmp_path / "runs"
    run_search(bundle, split, SearchConfig(n_shared=2, n_personal=1, iterations=1, top_k=2), runs / "r1")
    artifacts = Path(os.environ.get("PAPREC_ARTIFACTS", REPO / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    proc, url = start_workbench(disk_rlm_dir, runs)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page.goto(url)
            expect(page.get_by_text("Search runs")).to_be_visible()
            sidebar = page.get_by_test_id("stSidebar")
            # pick a user by typing into the searchable picker
            sidebar.get_by_test_id("stSelectbox").filter(has_text="User id").click()
            page.keyboard.type("u3")
            page.keyboard.press("Enter")
            sidebar.get_by_text("Search", exact=True).click()
            grid = page.locator(".js-plotly-plot").first
            expect(grid).to_be_visible()
            expect(page.get_by_text("personal slots of user u3")).to_be_visible()
            expect(page.locator(".js-plotly-plot").filter(has_text="Prompt tokens per step")).to_have_count(1)
            sidebar.get_by_text("Compare", exact=True).click()
            expect(page.get_by_text("ground truth at rank").first).to_be_visible()
            expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
            page.wait_for_timeout(500)
            shot = artifacts / "workbench_compare.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            browser.close()
    finally:
        stop_workbench(proc)
