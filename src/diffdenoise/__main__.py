"""``python -m diffdenoise ...``: the command line (also what ``torchrun -m diffdenoise denoise ...`` runs)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
