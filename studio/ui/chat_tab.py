"""Chat tab: one question, two answers side by side, from the base model and from the tuned one.

Both come from one copy of the weights (`studio.chat`: the adapter switched off for the base side). Replies
stream, base first, then tuned; every pane shows the question at once, and the waiting one says why it waits.
A DPO/ORPO run that started from an SFT run gets a third pane in the middle, the SFT model (that run's adapter,
copied into the preference run's folder): base -> SFT -> preference-tuned. Every handler that touches the model
shares the concurrency queue "model", so two tabs never generate on the same weights at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from studio import loop, policy, service
from studio.ui import MODEL_EVENTS, md_escape, warm_imports

# ---- plain functions -------------------------------------------------------------------------------------------


def run_list() -> gr.Dropdown:
    choices = service.runs_with_weights()
    return gr.Dropdown(choices=choices, value=choices[0] if choices else None)


def examples_for(run_id: str | None) -> tuple:
    """The run's held-out questions for the example picker (their expected answers shown on pick)."""
    if not run_id:
        return gr.Dropdown(choices=[], value=None), {}, ""
    try:
        pairs, label = service.held_out_examples(run_id), service.example_source(run_id)
    except service.UserError:
        pairs, label = [], ""
    answers = {q: a for q, a in pairs}
    return (gr.Dropdown(choices=list(answers), value=None, label=f"{label or 'Questions to try'} (one click away)"),
            answers, "")


def pick_example(question: str | None, answers: dict) -> tuple[str, str]:
    if not question:
        return gr.skip(), ""
    return question, f"**Expected answer (from your data):** {md_escape(answers.get(question, ''))}"


def has_sft_side(run_id: str | None) -> bool:
    try:
        return bool(run_id) and service.sft_start(run_id) is not None
    except service.UserError:
        return False


def panes_for(run_id: str | None) -> tuple:
    """(SFT pane, tuned pane): the middle pane shows only for a preference run that started from an SFT run."""
    three = has_sft_side(run_id)
    return (gr.Chatbot(visible=three, value=[]),
            gr.Chatbot(label="Preference-tuned (after DPO/ORPO)" if three else "Tuned model (after)"))


def converse(run_id: str | None, prompt: str, base_history: list, sft_history: list, tuned_history: list,
             temperature: float, max_new_tokens: int):
    """Stream the base model's reply, then the SFT model's (three-way runs only), then the tuned model's."""
    # The caps first: the histories come from the browser, so a script can send anything as them.
    prompt = policy.prompt(prompt, list(tuned_history or []) + list(base_history or []) + list(sft_history or []))
    max_new_tokens, temperature = policy.new_tokens(max_new_tokens), policy.temperature(temperature)
    warm_imports()
    service.run_dir(run_id or "")
    yield from _stream_sides(run_id, prompt, base_history, sft_history, tuned_history, temperature, max_new_tokens)


LOADING = ("⏳ Loading the model (the first question after picking a run takes a few seconds), or waiting a moment "
           "while it finishes another request...")
WAITING = ("⏳ Waiting for the {before} model to finish: both sides share one copy of the weights in memory, so they "
           "answer one after the other.")


def _stream_sides(run_id: str, prompt: str, base_history: list, sft_history: list, tuned_history: list,
                  temperature: float, max_new_tokens: int):
    """Every pane shows the question at once: the first says the model is loading, the others that they wait for
    their turn and why; each then streams its reply in place of its notice."""
    three = has_sft_side(run_id)
    asking = [{"role": "user", "content": prompt}]
    base_history, tuned_history = list(base_history or []) + asking, list(tuned_history or []) + asking
    sft_history = list(sft_history or []) + (asking if three else [])
    panes = [base_history, *([sft_history] if three else []), tuned_history]
    messages = [[{"role": m["role"], "content": m["content"]} for m in h] for h in panes]
    notes = [LOADING, *[WAITING.format(before="base" if i == 0 else "SFT") for i in range(len(panes) - 1)]]
    for history, note in zip(panes, notes, strict=True):
        history.append({"role": "assistant", "content": note})

    def shown() -> tuple:  # copies: what was on screen then, whatever changes after
        return *([dict(m) for m in h] for h in (base_history, sft_history, tuned_history)), ""

    yield shown()  # before waiting for the model: the page is never blank while another request holds it
    with policy.model_turns.turn("the reply"):  # loading included: two loads at once would share the model cache
        model = service.chat_model(run_id)
        sides = [(model, False), *([(service.sft_chat_model(run_id), True)] if three else []), (model, True)]
        for (chat, tuned), history, asked in zip(sides, panes, messages, strict=True):
            for text in chat.stream(asked, tuned=tuned, max_new_tokens=max_new_tokens, temperature=temperature):
                history[-1] = {"role": "assistant", "content": text}
                yield shown()
            if history[-1]["content"] in notes:  # nothing came back
                history[-1] = {"role": "assistant", "content": ""}


def last_exchange(tuned_history: list) -> tuple[str, str]:
    """(the last question, the tuned model's reply to it) in the tuned pane, or empty strings."""
    history = [m for m in tuned_history or [] if isinstance(m, dict)]
    for i in range(len(history) - 1, 0, -1):
        if history[i].get("role") == "assistant" and history[i - 1].get("role") == "user":
            return str(history[i - 1].get("content") or ""), str(history[i].get("content") or "")
    return "", ""


def edit_last(tuned_history: list) -> str:
    """The tuned model's last reply, into the box to edit into the right answer."""
    return last_exchange(tuned_history)[1]


def mark_last(run_id: str | None, tuned_history: list, verdict: str, correction: str) -> str:
    """Mark the tuned model's last reply right, or wrong with the right answer (kept with the run's corrections)."""
    question, answer = last_exchange(tuned_history)
    if not question:
        raise gr.Error("Ask a question first: the mark is for the tuned model's last reply.")
    loop.mark_answer(run_id or "", question, answer, verdict == "right", correction, source="chat")
    return ("✅ Kept with this run's corrections: the Evaluate tab's **Train again with my corrections** uses it.")


# ---- layout ----------------------------------------------------------------------------------------------------


def landing() -> tuple:
    """The demo's opening state: the baked run chosen, and its questions one click away (taught, then reworded)."""
    from studio.demo import demo_questions, demo_run

    choices, baked = service.runs_with_weights(), demo_run()
    chosen = baked if baked in choices else (choices[0] if choices else None)
    pairs = demo_questions(chosen) if chosen else []
    taught = [[q] for kind, q in pairs if kind == "taught"]
    reworded = [[q] for kind, q in pairs if kind == "reworded"]
    return (gr.Dropdown(choices=choices, value=chosen), gr.Dataset(samples=taught, visible=bool(taught)),
            gr.Dataset(samples=reworded, visible=bool(reworded)))


@dataclass
class ChatTab:
    run: gr.Dropdown


def build(tab: gr.Tab, page: gr.Blocks | None = None, demo_landing: bool = False) -> ChatTab:
    """The tab; with `demo_landing` (a read-only demo) it opens on the baked run with one-click questions."""
    gr.Markdown("### 4. Chat\nAsk the same question to the model before and after training.")
    with gr.Row():
        run = gr.Dropdown(label="Trained run", choices=[], scale=4)
        refresh = gr.Button("↻ Refresh", scale=1)
    with gr.Row():
        example = gr.Dropdown(label="Held-out questions from this run (one click away)", choices=[], scale=4)
        temperature = gr.Slider(0, 1.5, value=0, step=0.05, label="Temperature",
                                info="0: always the most likely words; higher: more varied.", scale=1)
        max_new_tokens = gr.Slider(16, 512, value=128, step=16, label="Max new tokens", scale=1)
    expected = gr.Markdown()
    with gr.Row(visible=demo_landing):
        taught = gr.Dataset(components=[gr.Textbox(visible=False)], samples=[], label="Questions it was taught",
                            visible=False)
        reworded = gr.Dataset(components=[gr.Textbox(visible=False)], samples=[],
                              label="The same facts asked in other words (never trained on)", visible=False)
    with gr.Row():
        base_chat = gr.Chatbot(label="Base model (before)", height=360)
        sft_chat = gr.Chatbot(label="SFT run (where DPO/ORPO started)", height=360, visible=False)
        tuned_chat = gr.Chatbot(label="Tuned model (after)", height=360)
    with gr.Row():
        prompt = gr.Textbox(label="Your question", placeholder="Ask something your data answers…", scale=5,
                            submit_btn=True)
        clear = gr.Button("Clear", scale=1)
    answers = gr.State({})
    with gr.Accordion("Mark the tuned model's last reply", open=False):
        with gr.Row():
            verdict = gr.Radio(["right", "wrong"], value="wrong", label="This answer is", scale=1)
            correction = gr.Textbox(label="The right answer", lines=2, scale=4)
        with gr.Row():
            edit = gr.Button("Edit the last reply", scale=1)
            save = gr.Button("Save this mark", scale=1)
        marked = gr.Markdown()

    refresh.click(run_list, outputs=[run], api_visibility="private")
    tab.select(run_list, outputs=[run], api_visibility="private")
    run.change(examples_for, inputs=[run], outputs=[example, answers, expected], api_visibility="private")
    run.change(panes_for, inputs=[run], outputs=[sft_chat, tuned_chat], show_progress="hidden",
               api_visibility="private")
    example.input(pick_example, inputs=[example, answers], outputs=[prompt, expected], api_visibility="private")
    prompt.submit(converse, inputs=[run, prompt, base_chat, sft_chat, tuned_chat, temperature, max_new_tokens],
                  outputs=[base_chat, sft_chat, tuned_chat, prompt], **MODEL_EVENTS,
                  api_visibility="private")
    clear.click(lambda: ([], [], [], ""), outputs=[base_chat, sft_chat, tuned_chat, expected],
                api_visibility="private")
    edit.click(edit_last, inputs=[tuned_chat], outputs=[correction], api_visibility="private")
    save.click(mark_last, inputs=[run, tuned_chat, verdict, correction], outputs=[marked], api_visibility="private")
    if demo_landing and page is not None:
        page.load(landing, outputs=[run, taught, reworded], api_visibility="private")
        for questions in (taught, reworded):
            (questions.click(lambda sample: sample[0], inputs=[questions], outputs=[prompt], api_visibility="private")
             .then(converse, inputs=[run, prompt, base_chat, sft_chat, tuned_chat, temperature, max_new_tokens],
                   outputs=[base_chat, sft_chat, tuned_chat, prompt], **MODEL_EVENTS, api_visibility="private"))
    return ChatTab(run)
