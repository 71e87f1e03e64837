"""Every method at matched token cost, scored the way DESIGN.md "Measuring quality" asks.

The question a user asks is whether progressive sampling beats fewer full-size steps at the same
cost.  A method here is a run on a batch of seeds that returns samples and its model cost in
full-size calls (``spectral_core.plan.plan_cost``: sum_k h_k w_k / (H W) over the model calls).  Each
is scored by

* the primary metric (``primary.distribution_distance``): patch Frechet and patch sliced-W distance
  to the SAME model's own high-step full-size samples on disjoint seeds, with seed-bootstrap 95%
  intervals; the floor is the high-step run on the method seeds against that reference
  (reference against reference), and a method is within the floor when its estimate is at most the
  floor's upper bound;
* composition stability: same-seed PSNR/SSIM against the high-step run;
* against held-out data from the exact generator (sanity): patch sliced-W and log-spectrum error.

``paired_gap`` compares two methods run on the same seeds by the difference of their primary
metrics with a paired seed bootstrap (``primary.paired_difference``): the honest answer to "is this
method better than full size at the same cost", since the two marginal intervals share most of their
seed noise.  ``cost_plot`` draws quality against cost (one line per method family).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from ..nodes.plot import COLORS
from ..spectral_core import sample_euler
from .embedded_setup import linear_sigmas
from .metrics import log_spectrum_error, patches, psnr, sliced_wasserstein, ssim
from .primary import distribution_distance, paired_difference, within_floor

REFERENCE_SEED_OFFSET = 1_000_003  # reference seeds are disjoint from the method seeds
PALETTE = list(COLORS) + [(23, 190, 207), (127, 127, 127), (188, 189, 34), (227, 119, 194)]


@dataclass
class Method:
    """A sampling method on a batch of unit noise: ``run(noise) -> samples``; ``cost`` in full-size calls."""
    name: str
    family: str  # the line it belongs to in the quality-versus-cost plot
    cost: float
    run: Callable[[torch.Tensor], torch.Tensor]


def full_size(model, steps: int, family: str = "full size, fewer steps") -> Method:
    """Euler at full size on ``steps`` equal flow-time steps."""
    sig = linear_sigmas(steps)
    return Method(f"full size {steps} steps", family, float(steps), lambda noise: sample_euler(model, noise, sig))


def seeded_noise(n: int, size: int, seed: int, channels: int = 3) -> torch.Tensor:
    """Unit noise of seed ``seed`` (the method seeds; the reference uses seed + REFERENCE_SEED_OFFSET)."""
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def reference_samples(model, n: int, size: int, seed: int, steps: int = 50, batch: int = 32) -> torch.Tensor:
    """The model's own ``steps``-step full-size samples on seeds disjoint from the method seeds."""
    noise = seeded_noise(n, size, seed + REFERENCE_SEED_OFFSET)
    sig = linear_sigmas(steps)
    with torch.no_grad():
        return torch.cat([sample_euler(model, noise[i:i + batch], sig) for i in range(0, n, batch)])


def run_batched(method: Method, noise: torch.Tensor, batch: int = 32) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([method.run(noise[i:i + batch]) for i in range(0, noise.shape[0], batch)])


def score(name: str, family: str, cost: float, out: torch.Tensor, *, high_step: torch.Tensor,
          reference: torch.Tensor, heldout: torch.Tensor | None, full_steps: int, bootstrap: int,
          floor: dict | None, heldout_patches: torch.Tensor | None = None) -> dict:
    """One table row: cost, the primary metric with its interval, same-seed PSNR/SSIM, data sanity."""
    d = distribution_distance(out, reference, bootstrap=bootstrap)
    row = {"method": name, "family": family, "cost (full-size calls)": cost, "token saving": full_steps / cost,
           "patch Frechet": d["frechet"], "Frechet 95% CI": _ci(d["frechet_ci"]),
           "patch SW": d["swd"], "SW 95% CI": _ci(d["swd_ci"]),
           "within floor": "floor" if floor is None else ("yes" if within_floor(d, floor) else "no"),
           "same-seed PSNR dB": float(psnr(out, high_step).mean()) if out is not high_step else math.inf,
           "same-seed SSIM": float(ssim(out, high_step).mean())}
    if heldout is not None:
        held_p = patches(heldout) if heldout_patches is None else heldout_patches
        row["patch SW to data"] = sliced_wasserstein(patches(out), held_p)
        row["log-spectrum error"] = log_spectrum_error(out, heldout)
    row["_metric"] = d
    return row


def _ci(ci: Sequence[float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def evaluate(methods: Sequence[Method], noise: torch.Tensor, reference: torch.Tensor, *, high_step_name: str,
             heldout: torch.Tensor | None = None, bootstrap: int = 100, full_steps: int = 50,
             log: Callable[[str], None] = print) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Run every method on ``noise`` and score it; the method named ``high_step_name`` (the high-step
    full-size run on the method seeds) is the floor and the same-seed target."""
    outs: dict[str, torch.Tensor] = {}
    for m in methods:
        outs[m.name] = run_batched(m, noise)
        log(f"  sampled {m.name} (cost {m.cost:.1f})")
    high = outs[high_step_name]
    held_p = patches(heldout) if heldout is not None else None
    rows: list[dict] = []
    floor = None  # the high-step run is scored first and is the floor of the others
    for m in sorted(methods, key=lambda m: m.name != high_step_name):
        rows.append(score(m.name, m.family, m.cost, outs[m.name], high_step=high, reference=reference,
                          heldout=heldout, heldout_patches=held_p, full_steps=full_steps, bootstrap=bootstrap,
                          floor=floor))
        floor = floor or rows[0]["_metric"]
        log(f"  scored {m.name}: Frechet {rows[-1]['patch Frechet']:.3f}")
    return rows, outs


def public_rows(rows: Sequence[dict]) -> list[dict]:
    """The rows without their private metric dicts (for tables and JSON)."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def equal_cost_gap(rows: Sequence[dict], name: str, key: str = "patch Frechet",
                   baseline_family: str = "full size, fewer steps") -> dict | None:
    """Compare method ``name`` with the full-size run of the nearest cost at or below its own (the
    user's alternative at the same budget): {"method", "baseline", key of both, "better"}."""
    me = next((r for r in rows if r["method"] == name), None)
    base = [r for r in rows if r["family"] == baseline_family and r["cost (full-size calls)"] <= me["cost (full-size calls)"] + 1e-9] if me else []
    if not base:
        return None
    b = max(base, key=lambda r: r["cost (full-size calls)"])
    return {"method": name, "baseline": b["method"], key: me[key], f"baseline {key}": b[key], "better": me[key] < b[key]}


def _signed_ci(ci: Sequence[float]) -> str:
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def paired_gap(outs: dict[str, torch.Tensor], reference: torch.Tensor, name: str, baseline: str, *,
               bootstrap: int) -> dict:
    """Method ``name`` minus ``baseline`` (both run on the same seeds) on both primary metrics, with the
    paired seed-bootstrap interval; "verdict" is "better" / "worse" when the Frechet interval excludes
    0, else "not distinguishable" (the sign of the estimate is still reported)."""
    d = paired_difference(outs[name], outs[baseline], reference, bootstrap=bootstrap)
    lo, hi = d["frechet_ci"]
    verdict = "better" if hi < 0 else "worse" if lo > 0 else "not distinguishable"
    return {"method": name, "baseline": baseline, "Frechet difference": d["frechet"],
            "Frechet difference 95% CI": _signed_ci(d["frechet_ci"]), "SW difference": d["swd"],
            "SW difference 95% CI": _signed_ci(d["swd_ci"]), "verdict": verdict, "_paired": d}


def add_equal_cost_gaps(rows: Sequence[dict], outs: dict[str, torch.Tensor], reference: torch.Tensor, *,
                        bootstrap: int, baseline_family: str = "full size, fewer steps") -> None:
    """Give every row outside ``baseline_family`` its paired gap (``paired_gap``) to the full-size run
    of the nearest cost at or below its own (``equal_cost_gap``'s choice), as the row fields
    "equal-cost full size" and "Frechet minus it [95% CI]"."""
    for r in rows:
        if r["family"] == baseline_family:
            continue
        gap = equal_cost_gap(rows, r["method"], baseline_family=baseline_family)
        if gap is None:
            continue
        g = paired_gap(outs, reference, r["method"], gap["baseline"], bootstrap=bootstrap)
        r["equal-cost full size"] = gap["baseline"]
        r["Frechet minus it [95% CI]"] = f"{g['Frechet difference']:+.3f} {g['Frechet difference 95% CI']}"
        r["_gap"] = g


def cost_plot(rows: Sequence[dict], key: str = "patch Frechet", size: tuple[int, int] = (820, 500),
              title: str = "patch Frechet distance to the model's own 50-step samples (lower is better)") -> Image.Image:
    """Quality against cost: one polyline per method family, x = cost in full-size calls (log), y = ``key``;
    the floor as a dashed horizontal band (its 95% interval) when a row has "within floor" == "floor"."""
    W, H = size
    left, right, top, bottom = 70, 250, 36, 50
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.font = ImageFont.load_default()
    xs = [r["cost (full-size calls)"] for r in rows]
    ys = [r[key] for r in rows]
    x0, x1 = math.log(min(xs) * 0.9), math.log(max(xs) * 1.1)
    floor_hi = [r["_metric"]["frechet_ci" if key == "patch Frechet" else "swd_ci"][1] for r in rows
                if r.get("within floor") == "floor"]
    y0, y1 = 0.0, max(ys + floor_hi) * 1.08
    px = lambda c: left + (math.log(c) - x0) / (x1 - x0) * (W - left - right)  # noqa: E731
    py = lambda v: H - bottom - (v - y0) / (y1 - y0) * (H - top - bottom)  # noqa: E731
    d.rectangle([left, top, W - right, H - bottom], outline=(0, 0, 0))
    d.text((left, 8), title, fill=(0, 0, 0))
    d.text((left + (W - left - right) // 2 - 80, H - 22), "cost (full-size model calls, log)", fill=(0, 0, 0))
    last = -1e9
    for c in sorted({round(x) for x in xs}):
        d.line([px(c), H - bottom, px(c), H - bottom + 4], fill=(0, 0, 0))
        if px(c) - last >= 24:  # label only ticks that do not overlap the previous label
            d.text((px(c) - 6, H - bottom + 6), str(c), fill=(0, 0, 0))
            last = px(c)
    for i in range(5):
        v = y0 + (y1 - y0) * i / 4
        d.text((8, py(v) - 7), f"{v:.3g}", fill=(0, 0, 0))
    for r in rows:
        if r.get("within floor") == "floor":
            lo, hi = r["_metric"][f"{'frechet' if key == 'patch Frechet' else 'swd'}_ci"]
            for v in (lo, hi):
                for xx in range(left, W - right, 8):
                    d.line([xx, py(v), xx + 4, py(v)], fill=(120, 120, 120))
            d.text((W - right + 8, py(hi) - 7), "floor (95%)", fill=(90, 90, 90))
    families = list(dict.fromkeys(r["family"] for r in rows))
    for j, fam in enumerate(families):
        col = PALETTE[j % len(PALETTE)]
        pts = sorted((px(r["cost (full-size calls)"]), py(r[key])) for r in rows if r["family"] == fam)
        if len(pts) > 1:
            d.line(pts, fill=col, width=2)
        for x, y in pts:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=col)
        d.text((W - right + 8, top + 18 * j + 20), fam, fill=col)
    return img


__all__ = ["Method", "add_equal_cost_gaps", "cost_plot", "equal_cost_gap", "evaluate", "full_size", "paired_gap",
           "public_rows", "reference_samples", "run_batched", "score", "seeded_noise"]
