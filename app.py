"""Start the Studio web app: `python app.py [--host H] [--port N] [--open-to-network]`.

It listens on 127.0.0.1 (this machine only) unless told otherwise: `--host` over GRADIO_SERVER_NAME, `--port`
over GRADIO_SERVER_PORT over PORT, else 7860. Listening beyond loopback without STUDIO_AUTH makes it a shared
studio (see `studio.policy`); `--open-to-network` turns every feature on for anyone who reaches it.
torch and transformers are imported inside the handlers, so the page is up within seconds.
"""

import argparse
import os

# Threads that do not ask for more run torch on one thread, so no idle OpenMP pool slows the ones
# that do (training, generation): see studio.hardware.on_fresh_thread. Before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from studio.policy import UserError  # noqa: E402
from studio.ui.app import build_app, prepare, start_settings, use_queue  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Studio: no-code fine-tuning in the browser.")
    parser.add_argument("--host", help="address to listen on (default: GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: GRADIO_SERVER_PORT, else PORT, else 7860)")
    parser.add_argument("--open-to-network", action="store_true",
                        help="beyond loopback without a login, keep every feature on for anyone who reaches the "
                             "port (server folders as models, remote code, endpoints). Prefer STUDIO_AUTH.")
    args = parser.parse_args()
    try:
        settings = start_settings(args.host, args.port, args.open_to_network)
    except UserError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(settings.pop("notice"), flush=True)
    prepare()
    demo = build_app()
    use_queue(demo)
    demo.launch(**settings)
