"""``python -m spectral_progressive.finetune.average --out FILE A B [C ...]``: one LoRA adapter whose
update is the mean of the given adapters' updates (``lora.average_adapters``: the ranks add up, the
result is exact, not an approximation).  Use it to average fine-tunes of one model and plan that
differ only in their seed, so the adapter a user gets depends less on one draw."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .lora import average_adapters


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spectral_progressive.finetune.average",
                                description="Average LoRA adapters of python -m spectral_progressive.finetune.")
    p.add_argument("--out", required=True, help="the averaged adapter (a .safetensors file; its folder must exist)")
    p.add_argument("adapters", nargs="+", help="two or more adapters of one model and plan")
    args = p.parse_args(argv)
    if len(args.adapters) < 2:
        p.error("adapters: give at least two adapters to average")
    missing = [a for a in args.adapters if not Path(a).is_file()]
    if missing:
        p.error(f"adapters: {missing[0]!r} is not a file")
    out = Path(args.out)
    if not out.parent.is_dir():
        p.error(f"--out {args.out!r}: its folder does not exist")
    try:
        tensors, meta = average_adapters(args.adapters)
    except ValueError as e:
        p.error(str(e))
    from safetensors.torch import save_file
    save_file(tensors, str(out), metadata=meta)
    print(f"wrote {out}: rank {meta['rank']}, the mean of {len(args.adapters)} adapters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
