import os
import sys

# Threads that do not ask for more run torch on one thread, so no idle OpenMP pool slows the ones
# that do (training, generation): see studio.hardware.on_fresh_thread. Before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from studio.cli import main  # noqa: E402

sys.exit(main())
