"""Push a finished run to the Hugging Face Hub: the adapter (small) or the merged model, with its model card.

The token is a secret that a shared deployment's users type into a form, so it lives only in the
arguments of one call: it is not logged, not written into the run folder, and scrubbed from every error
message (exceptions from HTTP libraries can echo request headers). Errors are chained `from None` so a
traceback cannot carry it either.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from studio import runs
from studio.export import export_run

WHAT = ("adapter", "merged")


class HubError(RuntimeError):
    """The push did not happen; the message says why and what to do, and never contains the token."""


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def push_to_hub(run_dir: Path, repo_id: str, token: str, what: str = "adapter", private: bool = True) -> str:
    """Create (or reuse) the model repo `repo_id` and upload the run's `what`; returns the repo URL.

    The upload is prepared with `export_run` in a temporary folder, so the README.md model card and
    recipe.yaml travel with the weights and the run folder itself is only read.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HTTPError, OfflineModeIsEnabled

    if what not in WHAT:
        raise HubError(f"Unknown upload '{what}'. Use 'adapter' or 'merged'.")
    if not token or not token.strip():
        raise HubError("A Hugging Face token with write access is needed; create one at "
                       "https://huggingface.co/settings/tokens.")
    token = token.strip()
    if runs.final_weights(run_dir) is None:
        raise HubError(f"Run {Path(run_dir).name} has no final weights yet; wait for it to finish, then push.")
    # HF_ENDPOINT is read when huggingface_hub is imported; reading it per call lets a mirror be set later.
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    unreachable = (f"Could not reach the Hugging Face Hub to push {repo_id}: check the network (or a proxy or "
                   "HF_HUB_OFFLINE setting); your run is untouched.")
    try:
        url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)  # first: fails fast
        with tempfile.TemporaryDirectory(prefix="studio-push-") as tmp:
            folder = export_run(Path(run_dir), what, Path(tmp) / what)
            api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model",
                              commit_message=f"Upload {what} from Studio run {Path(run_dir).name}")
    except OfflineModeIsEnabled:
        raise HubError(unreachable) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubError(f"The Hub refused the token for {repo_id} (HTTP {status}). Use a token with write "
                           "access to that namespace; your run is untouched.") from None
        raise HubError(_scrub(f"The Hub refused the upload to {repo_id}: {exc}. Your run is untouched.",
                              token)) from None
    except HTTPError:  # connection refused, DNS, timeouts: the transport errors of the Hub's HTTP client
        raise HubError(unreachable) from None
    except (OSError, ValueError) as exc:
        raise HubError(_scrub(f"Could not push {repo_id}: {exc}", token)) from None
    return str(url)
