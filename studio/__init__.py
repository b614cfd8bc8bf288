"""Studio: a no-code fine-tuning studio. The engine lives here; only `studio.ui` imports gradio."""

__version__ = "0.1.0"
