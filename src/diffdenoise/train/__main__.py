"""``python -m diffdenoise.train CONFIG [--set key=value ...] [--out DIR]`` (also under ``torchrun``)."""
import os
import sys

from .loop import train_main

code = train_main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # Under torchrun a rank leaves without interpreter finalisation.  Gloo's worker threads free a finished collective
    # after wait() has returned, and that takes the GIL (it holds Python objects); a thread asking for the GIL while
    # the interpreter finalises is killed and aborts the process ("terminate called without an active exception",
    # SIGABRT, about one two-rank CPU run in 25).  The checkpoint and log are closed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
