"""Shared test set-up: one STUDIO_HOME for the whole session, so the default model is converted once."""

import os

os.environ.setdefault("STUDIO_HOME", "/tmp/studio-test-home")
