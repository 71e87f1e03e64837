"""``python -m spectral_progressive.finetune``: Sec. 4.3 fine-tuning of the embedded model (see cli.py)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
