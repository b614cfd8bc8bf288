"""The README's screenshots, taken the way a user walks the studio: `assets/bakery_faq.csv` as Excel, the defaults.

    python bench/screenshots.py [--out assets/screenshots]

Starts `python app.py` on a free port with a temporary STUDIO_HOME (the converted default model linked in),
drives headless Debian Chromium with Playwright through Data -> Model & method -> Train (to the end, with the
default recipe: a minute or two on a CPU) -> Chat -> Evaluate -> Runs & export, and writes one PNG per tab,
1000 px wide. Nothing is faked: the figures on the screenshots are this machine's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CHROMIUM = "/usr/bin/chromium"
BOTS = "[...document.querySelectorAll('[data-testid=bot]')]"


def serve(home: Path) -> tuple[subprocess.Popen, str]:
    from bench.first_loss import free_port

    port = free_port()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO,
                           env=dict(os.environ, STUDIO_HOME=str(home)), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=2):
                return app, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the app did not serve its page")


def save(page, out: Path, name: str) -> None:
    from PIL import Image

    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    image = Image.open(path)
    image.resize((1000, round(image.height * 1000 / image.width)), Image.LANCZOS).save(path, optimize=True)
    print(f"{path.relative_to(REPO)}: {path.stat().st_size // 1024} KB")


def walk(page, data: Path, out: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("26 of 26 rows usable").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for()
    save(page, out, "1_data")
    page.get_by_role("tab", name="2. Model & method").click()
    page.get_by_text("Sized to your 26 training examples").wait_for(timeout=60_000)
    page.get_by_text("The recipe is valid.").wait_for(timeout=60_000)
    save(page, out, "2_model")
    page.get_by_role("tab", name="3. Train").click()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Answers your questions asked in other words").first.wait_for(timeout=900_000)
    save(page, out, "3_train")
    page.get_by_role("tab", name="4. Chat").click()
    page.wait_for_function("(el) => el.value.includes('crumb')", arg=page.get_by_label("Trained run")
                           .element_handle(), timeout=30_000)
    question = page.get_by_label("Your question", exact=True)
    question.fill("How much is the sourdough bread at Crumb & Co?")
    question.press("Enter")
    page.wait_for_function(f"() => {BOTS}.length >= 2 && {BOTS}.every(m => m.innerText.trim().length > 0 "
                           "&& !m.innerText.includes('⏳'))", timeout=120_000)
    save(page, out, "4_chat")
    page.get_by_role("tab", name="5. Evaluate").click()
    page.get_by_text(re.compile(r"Answers your questions asked in other words: \d+ of \d+")).last.wait_for(
        timeout=60_000)
    page.wait_for_timeout(1000)
    save(page, out, "5_evaluate")
    page.get_by_role("tab", name="6. Runs & export").click()
    page.get_by_role("button", name="GGUF q8_0 + Modelfile (.zip)").click()
    page.get_by_text(re.compile("Ready in")).first.wait_for(timeout=600_000)
    save(page, out, "6_export")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "assets" / "screenshots"))
    args = parser.parse_args()
    import pandas as pd
    from playwright.sync_api import sync_playwright

    from studio.paths import studio_home

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="screenshots-home-"))
    if (studio_home() / "models").exists():
        (home / "models").symlink_to(studio_home() / "models", target_is_directory=True)
    data = home / "crumb_and_co_faq.xlsx"
    pd.read_csv(REPO / "assets" / "bakery_faq.csv").to_excel(data, index=False)
    app, url = serve(home)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url)
            walk(page, data, out)
            browser.close()
    finally:
        app.terminate()
        app.wait(30)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
