"""``python -m diffdenoise.train CONFIG [--set key=value ...] [--out DIR]`` (also under ``torchrun``)."""
import sys

from .loop import train_main

sys.exit(train_main())
