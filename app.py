"""Start the Studio web app: `python app.py [--port N]` (or env PORT), served on 0.0.0.0.

torch and transformers are imported inside the handlers, so the page is up within seconds.
"""

import argparse
import os

# Threads that do not ask for more run torch on one thread, so no idle OpenMP pool slows the ones
# that do (training, generation): see studio.models.on_fresh_thread. Before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from studio.ui.app import build_app, launch_kwargs, prepare, use_queue  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Studio: no-code fine-tuning in the browser.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7860")))
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    args = parser.parse_args()
    prepare()
    demo = build_app()
    use_queue(demo)
    demo.launch(server_name=args.host, server_port=args.port, **launch_kwargs())
