"""The README's screenshots, taken the way a user walks the studio: `assets/bakery_faq.csv` as Excel, the defaults.

    python bench/screenshots.py [--out assets/screenshots] [--lang en|vi|both]

Starts `python app.py` on a free port with a temporary STUDIO_HOME (the converted default model linked in),
drives headless Debian Chromium with Playwright through Data -> Model & method -> Train (to the end, with the
default recipe: a minute or two on a CPU) -> Chat -> Evaluate -> Runs & export, and writes one PNG per tab,
1000 px wide, in English and then in Vietnamese (a browser set to Vietnamese, on the same run; into OUT/vi).
Nothing is faked: the figures on the screenshots are this machine's.
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


# What the walk looks for, in each language of the page.
WORDS = {
    "en": {"usable": "26 of 26 rows usable", "tabs": ["1. Data", "2. Model & method", "3. Train", "4. Chat",
                                                      "5. Evaluate", "6. Runs & export"],
           "sized": "Sized to your 26 training examples", "valid": "The recipe is valid.", "start": "Start training",
           "verdict": "Answers your questions asked in other words", "of": "of", "run": "Trained run",
           "question": "Your question", "ready": "Ready in",
           "ask": "How much is the sourdough bread at Crumb & Co?"},
    "vi": {"usable": "26 trên 26 hàng dùng được", "tabs": ["1. Dữ liệu", "2. Mô hình & phương pháp", "3. Huấn luyện",
                                                          "4. Trò chuyện", "5. Đánh giá", "6. Các lượt & xuất"],
           "sized": "Đã chỉnh theo 26 ví dụ huấn luyện của bạn", "valid": "Công thức hợp lệ.",
           "start": "Bắt đầu huấn luyện", "verdict": "Trả lời đúng câu hỏi của bạn hỏi bằng lời khác", "of": "trên",
           "run": "Lượt đã huấn luyện", "question": "Câu hỏi của bạn", "ready": "Xong trong",
           "ask": "How much is the sourdough bread at Crumb & Co?"},
}


def settled(page) -> None:
    """Both chat panes hold a reply that has stopped growing (the tuned side streams after the base side)."""
    page.wait_for_function(f"() => {BOTS}.length >= 2 && {BOTS}.every(m => m.innerText.trim().length > 0 "
                           "&& !m.innerText.includes('⏳'))", timeout=120_000)
    last = None
    while (now := page.evaluate(f"() => {BOTS}.map(m => m.innerText).join('|')")) != last:
        last = now
        page.wait_for_timeout(1500)


def walk(page, data: Path, out: Path, words: dict, train: bool) -> None:
    """One language's walk; `train`: start the run (the second language shows the same run, trained once)."""
    tabs = words["tabs"]
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text(words["usable"]).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for()
    save(page, out, "1_data")
    page.get_by_role("tab", name=tabs[1]).click()
    page.get_by_text(words["sized"]).wait_for(timeout=60_000)
    page.get_by_text(words["valid"]).wait_for(timeout=60_000)
    save(page, out, "2_model")
    page.get_by_role("tab", name=tabs[2]).click()
    if train:
        page.get_by_role("button", name=words["start"]).click()
    page.get_by_text(words["verdict"]).first.wait_for(timeout=900_000)
    save(page, out, "3_train")
    page.get_by_role("tab", name=tabs[3]).click()
    page.wait_for_function("(el) => el.value.includes('crumb')", arg=page.get_by_label(words["run"])
                           .element_handle(), timeout=30_000)
    question = page.get_by_label(words["question"], exact=True)
    question.fill(words["ask"])  # the data is English: so are its questions, in either language of the page
    question.press("Enter")
    settled(page)
    save(page, out, "4_chat")
    page.get_by_role("tab", name=tabs[4]).click()
    page.get_by_text(re.compile(rf"{words['verdict']}: \d+ {words['of']} \d+")).last.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    save(page, out, "5_evaluate")
    page.get_by_role("tab", name=tabs[5]).click()
    page.get_by_role("button", name="GGUF q8_0 + Modelfile (.zip)").click()
    page.get_by_text(re.compile(words["ready"])).first.wait_for(timeout=600_000)
    save(page, out, "6_export")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "assets" / "screenshots"))
    parser.add_argument("--lang", choices=[*WORDS, "both"], default="both",
                        help="the page's language (the browser's own); Vietnamese goes to OUT/vi")
    args = parser.parse_args()
    import pandas as pd
    from playwright.sync_api import sync_playwright

    from studio.paths import studio_home

    home = Path(tempfile.mkdtemp(prefix="screenshots-home-"))
    if (studio_home() / "models").exists():
        (home / "models").symlink_to(studio_home() / "models", target_is_directory=True)
    if (studio_home() / "matmul_flops.json").exists():  # this machine's speed, measured on a quiet machine
        shutil.copy(studio_home() / "matmul_flops.json", home / "matmul_flops.json")
    data = home / "crumb_and_co_faq.xlsx"
    pd.read_csv(REPO / "assets" / "bakery_faq.csv").to_excel(data, index=False)
    app, url = serve(home)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            for n, lang in enumerate([*WORDS] if args.lang == "both" else [args.lang]):
                out = Path(args.out) / ("" if lang == "en" else lang)
                out.mkdir(parents=True, exist_ok=True)
                page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale=f"{lang}-VN"
                                        if lang == "vi" else "en-US")
                page.set_default_timeout(30_000)
                page.goto(url)
                walk(page, data, out, WORDS[lang], train=n == 0)
                page.close()
            browser.close()
    finally:
        app.terminate()
        app.wait(30)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
