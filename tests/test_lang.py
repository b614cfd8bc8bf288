"""The Vietnamese page (#18): the language chosen per browser, every word of the page and of what the studio writes
translated at the edge, the engine and the CLI left in English. The browser test in test_browser.py walks it."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from studio.ui import lang, md_escape, vi


def test_the_language_is_the_switch_then_the_browser_then_english():
    assert lang.choose(None, None) == "en"
    assert lang.choose("", "vi-VN,vi;q=0.9,en;q=0.8") == "vi"
    assert lang.choose("", "fr-FR,vi;q=0.5") == "vi"  # the first the studio has
    assert lang.choose("", "fr-FR,de") == "en"
    assert lang.choose("a=1; studio-lang=en", "vi-VN") == "en"  # the switch wins over the browser
    assert lang.choose("studio-lang=vi", "en-US") == "vi"
    assert lang.choose("studio-lang=xx", "en-US") == "en"  # a value the studio lacks is no choice
    assert lang.choose('bad"cookie;;=', "vi") == "vi"


def test_templates_keep_their_fields_and_the_catalogue_has_no_english_left():
    for english, vietnamese in vi.PATTERNS:
        assert sorted(re.findall(r"\{(\w+)\}", english)) == sorted(re.findall(r"\{(\w+)\}", vietnamese)), english
    for english, vietnamese in vi.EXACT.items():
        assert vietnamese.strip(), english
    assert len(set(vi.EXACT)) == len(vi.EXACT)


@pytest.mark.parametrize(("english", "vietnamese"), [
    ("Finished: 2 min 01 s from Start: preparing 1 s, drafting 16 s, training 1 min 07 s, evaluating 37 s. Answers "
     "your questions asked in other words: 21 of 22 (before training: 0 of 22).",
     "Xong: 2 phút 01 giây tính từ lúc bấm Bắt đầu: chuẩn bị 1 giây, soạn ví dụ 16 giây, huấn luyện 1 phút 07 giây, "
     "đánh giá 37 giây. Trả lời đúng câu hỏi của bạn hỏi bằng lời khác: 21 trên 22 (trước khi huấn luyện: 0 trên "
     "22)."),
    ("⏳ Step 2 of 5: saving the merged model (12 s so far).", "⏳ Bước 2 trên 5: đang lưu mô hình đã gộp (12 giây "
     "đến giờ)."),
    ("Drafting extra examples · step 3/40 · about 30 s left", "Đang soạn thêm ví dụ · bước 3/40 · còn khoảng 30 giây"),
    ("| Exact match (%) | 0.0 | 50.0 | +50.0 |", "| Khớp chính xác (%) | 0.0 | 50.0 | +50.0 |"),
    ("Columns: question ← `Q`, answer ← `A b`", "Các cột: câu hỏi ← `Q`, câu trả lời ← `A b`"),
    ("No sign of forgetting: general questions right 60% (base) vs 70% (tuned); taught answers repeated in 0% of "
     "general answers.", "Không thấy dấu hiệu quên kiến thức: câu hỏi chung trả lời đúng 60% (gốc) so với 70% (đã "
     "tinh chỉnh); câu trả lời đã học bị lặp lại trong 0% câu trả lời chung."),
    ("Possible forgetting: 20% of its answers to unrelated questions repeat taught answers.",
     "Có thể đã quên kiến thức: 20% câu trả lời cho câu hỏi không liên quan lặp lại câu trả lời đã học."),
    ("Waiting in the queue (1 of 2): it starts after the run training now.",
     "Đang chờ trong hàng đợi (1 trên 2): bắt đầu sau lượt đang huấn luyện."),
])
def test_messages_read_in_vietnamese_whole_or_by_their_parts(english, vietnamese):
    assert lang.translate(english, "vi") == vietnamese
    assert lang.translate(english, "en") == english


def test_markdown_escaped_text_is_translated_and_stays_escaped():
    """A message shown as typed (escaped so it renders no Markdown) comes out escaped the same way; names in it
    keep their escapes and their emphasis."""
    message = md_escape("Finished in 12 s.")
    assert lang.translate(message, "vi") == md_escape("Xong trong 12 giây.")
    shown = "✅ **crumb\\_faq\\.xlsx** · xlsx · format **qa**"
    assert lang.translate(shown, "vi") == "✅ **crumb\\_faq\\.xlsx** · xlsx · định dạng **qa**"


def test_user_data_passes_untouched_and_what_is_missing_is_noted():
    lang.misses.clear()
    text = "Our croissants are baked at 5 am by the owner."
    assert lang.translate(text, "vi") == text
    assert text in lang.misses
    assert lang.translate("crumb_and_co_faq-20261205", "vi") == "crumb_and_co_faq-20261205"


def test_outputs_are_translated_as_their_components_show_them():
    import gradio as gr
    import plotly.graph_objects as go

    frame = pd.DataFrame({"row": ["3"], "level": ["warning"], "problem": ["No problems found."], "answer": ["done"]})
    figure = go.Figure(go.Scatter(x=[1], y=[2], name="train loss")).update_layout(title="Loss (lower is better)",
                                                                                 xaxis_title="step")
    update = gr.update(label="Trained run", choices=[("Questions to try", "q")], value="Questions to try")
    out = lang.translate_outputs(("No run yet. Press **Start training**.", "User text stays", frame, figure, update,
                                  gr.Chatbot(label="Tuned model (after)")),
                                 ["markdown", "textbox", "dataframe", "plot", "dropdown", "chatbot"], "vi")
    assert out[0] == "Chưa có lượt nào. Bấm **Bắt đầu huấn luyện**."
    assert out[1] == "User text stays"  # a text box holds what the user typed
    assert list(out[2].columns) == ["hàng", "mức", "vấn đề", "câu trả lời"]
    assert out[2].iloc[0].tolist() == ["3", "cảnh báo", "Không thấy vấn đề nào.", "done"]  # the user's cell as it is
    assert out[3].layout.title.text == "Sai số (thấp hơn là tốt hơn)" and out[3].data[0].name == "sai số khi huấn luyện"
    assert out[4]["label"] == "Lượt đã huấn luyện" and out[4]["choices"] == [["Câu hỏi để thử", "q"]]
    assert out[4]["value"] == "Questions to try"  # a value is what handlers receive, in every language
    assert out[5].constructor_args["label"] == "Mô hình đã tinh chỉnh (sau)"
    assert lang.translate_outputs(("x",), ["markdown"], "en") == ("x",)


def test_every_word_of_the_page_has_its_vietnamese(tmp_path, monkeypatch):
    """The served configuration, translated: no label, help text, heading, button or choice is left without its
    Vietnamese (a new field or button without one fails here, with its English)."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    from studio.ui.app import build_app

    config = build_app().get_config_file()
    lang.misses.clear()
    lang.translate_config(config, "vi")
    assert not lang.misses, sorted(lang.misses)
    switch = next(c for c in config["components"] if c["props"].get("elem_id") == lang.SWITCH_ID)
    assert switch["props"]["value"] == "vi"
    labels = {c["props"].get("label") for c in config["components"]}
    assert "Mô hình gốc" in labels and "Base model" not in labels
