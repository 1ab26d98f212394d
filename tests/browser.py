"""Debian's Chromium (`apt-get install chromium`), headless, driven by Playwright."""

import os
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = Path(os.environ.get("RAYSTACK_CHROMIUM", "/usr/bin/chromium"))


@contextmanager
def chromium():
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)"
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses its sandbox to root, which CI runs as.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
