"""Train the embedded default model (flow matching on natural-image crops) within a wall-time budget.

    python -m spectral_progressive.embedded.train --out <dir> --minutes M --seed 0 [--threads 1]

Objective: x_t = (1 - t) x0 + t eps, the network predicts v = eps - x0, loss = MSE(v_pred, v).
t is drawn from a logit-normal distribution (sigmoid of N(0, 1)), mixed with 10% uniform draws so
both ends of [0, 1] are seen. Adam, linear warm-up then a cosine decay over the time budget, an
exponential moving average (EMA) of the weights. The run stops before the budget is spent and
writes to ``--out``:

- weights.safetensors  the EMA weights (what ``model.load_default_model`` loads)
- train_log.json       config, seed, versions, steps, wall time, downsampled loss curve, final losses
- loss_curve.png       the loss curve, drawn with PIL
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import data
from .model import DEFAULT_CONFIG, FlowUNet, count_parameters

LOGIT_NORMAL_MEAN = 0.0
LOGIT_NORMAL_STD = 1.0
UNIFORM_FRACTION = 0.1
CURVE_POINTS = 200
GRAD_CLIP = 1.0  # max global gradient norm
SAVE_RESERVE_S = 10.0  # seconds kept free at the end for the final evaluation and writing


def _positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return v


def _nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the trainer."""
    p = argparse.ArgumentParser(prog="python -m spectral_progressive.embedded.train",
                                description="Train the embedded flow-matching default model on skimage crops.")
    p.add_argument("--out", required=True, help="output directory (created if missing; must be writable)")
    p.add_argument("--minutes", type=_positive_float, required=True, help="wall-time budget in minutes (> 0)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of weights, data and noise (>= 0)")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (>= 1)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="crops per step")
    p.add_argument("--lr", type=_positive_float, default=5e-4, help="peak Adam learning rate")
    p.add_argument("--warmup", type=_nonnegative_int, default=200, help="linear warm-up steps")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay in [0, 1)")
    p.add_argument("--init", default=None, help="start from these weights (safetensors) instead of a random init")
    p.add_argument("--multires", type=float, default=0.0,
                   help="fraction of batches trained at 1/2 or 1/4 size on the spectrally contracted crops "
                        "(seed 001 Sec. 4.3: the model learns to be the low band of itself), in [0, 1]")
    return p


def _check_out_dir(parser: argparse.ArgumentParser, out: str) -> Path:
    """Create ``out`` if needed and prove it is writable; otherwise exit through ``parser.error``."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test_", delete=True):
            pass
    except OSError as e:
        parser.error(f"--out {out!r} is not a writable directory ({e.strerror or e})")
    return path


def sample_times(n: int, generator: torch.Generator) -> torch.Tensor:
    """Flow times in (0, 1): logit-normal, with a fraction UNIFORM_FRACTION drawn uniformly."""
    ln = torch.sigmoid(LOGIT_NORMAL_MEAN + LOGIT_NORMAL_STD * torch.randn(n, generator=generator))
    un = torch.rand(n, generator=generator)
    pick = torch.rand(n, generator=generator) < UNIFORM_FRACTION
    return torch.where(pick, un, ln)


def flow_loss(net: FlowUNet, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """MSE between the predicted and the true velocity eps - x0 at x_t = (1 - t) x0 + t eps."""
    tt = t.reshape(-1, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * eps
    return torch.mean((net(xt, t) - (eps - x0)) ** 2)


@torch.no_grad()
def evaluate(net: FlowUNet, crops: torch.Tensor, seed: int,
             times: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)) -> dict[str, float]:
    """Velocity MSE of ``net`` on ``crops`` at fixed times with seeded noise, per time and mean."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, float] = {}
    for t in times:
        eps = torch.randn(crops.shape, generator=g)
        out[f"t={t:g}"] = float(flow_loss(net, crops, eps, torch.full((crops.shape[0],), t)))
    out["mean"] = sum(out.values()) / len(times)
    return out


def downsample_curve(losses: list[float], points: int = CURVE_POINTS) -> list[list[float]]:
    """[[step, mean loss over the bin]] for at most ``points`` equal bins of the per-step losses
    (step is the bin's last step, 1-based)."""
    n = len(losses)
    if n == 0:
        return []
    bins = min(points, n)
    curve = []
    for b in range(bins):
        lo, hi = b * n // bins, (b + 1) * n // bins
        curve.append([hi, sum(losses[lo:hi]) / (hi - lo)])
    return curve


def draw_loss_curve(curve: list[list[float]], path: Path, title: str) -> None:
    """Draw the loss curve (log-scale y) as a PNG with PIL."""
    from PIL import Image, ImageDraw

    W, H, L, R, T, B = 800, 500, 80, 20, 40, 50
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.text((L, 12), title, fill="black")
    d.rectangle([L, T, W - R, H - B], outline="black")
    if len(curve) >= 1:
        steps = [c[0] for c in curve]
        logs = [math.log10(max(c[1], 1e-12)) for c in curve]
        lo, hi = math.floor(min(logs) * 10) / 10, math.ceil(max(logs) * 10) / 10
        if hi - lo < 0.1:
            hi = lo + 0.1
        smax = max(steps)

        def xy(s: float, lv: float) -> tuple[float, float]:
            return (L + (W - R - L) * s / max(smax, 1), H - B - (H - B - T) * (lv - lo) / (hi - lo))

        for k in range(5):  # y grid with labels
            lv = lo + (hi - lo) * k / 4
            y = xy(0, lv)[1]
            d.line([L, y, W - R, y], fill=(220, 220, 220))
            d.text((5, y - 6), f"{10 ** lv:.4f}", fill="black")
        for k in range(5):  # x labels
            s = smax * k / 4
            x = xy(s, lo)[0]
            d.text((x - 10, H - B + 8), f"{int(s)}", fill="black")
        d.text((W // 2 - 20, H - 20), "step", fill="black")
        pts = [xy(s, lv) for s, lv in zip(steps, logs)]
        if len(pts) > 1:
            d.line(pts, fill=(30, 90, 200), width=2)
        else:
            d.ellipse([pts[0][0] - 2, pts[0][1] - 2, pts[0][0] + 2, pts[0][1] + 2], fill=(30, 90, 200))
    img.save(path)


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same directory, then rename over ``path``."""
    tmp = path.with_name(f".tmp_{path.name}")  # keep the suffix (PIL picks the format by it)
    write(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # some writers create 0600 files; ship them readable like any other
    os.replace(tmp, path)


def save_outputs(out: Path, ema: FlowUNet, log: dict) -> None:
    """Write weights.safetensors (EMA, float32), train_log.json and loss_curve.png into ``out``."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float32).contiguous() for k, v in ema.state_dict().items()}
    meta = {"format": "pt", "config": json.dumps(log["config"]["model"]), "steps": str(log["steps"])}
    _atomic_write(out / "weights.safetensors", lambda p: save_file(state, str(p), metadata=meta))
    _atomic_write(out / "train_log.json", lambda p: p.write_text(json.dumps(log, indent=2) + "\n"))
    title = f"embedded flow model: velocity MSE per step (log scale), {log['steps']} steps, " \
            f"{log['wall_time_s'] / 60:.1f} min"
    _atomic_write(out / "loss_curve.png", lambda p: draw_loss_curve(log["loss_curve"], p, title))


def contract_batch(x0: torch.Tensor, factor: int) -> torch.Tensor:
    """Clean crops seen on a grid ``factor`` times smaller per side: C x / g (the DCT low band,
    pixel values preserved), exactly what a progressive run's low stage holds of the data."""
    from ..spectral_core.expansion import contract
    h, w = x0.shape[-2] // factor, x0.shape[-1] // factor
    return contract(x0, (h, w), 0.0)[0]


def train(out: Path, minutes: float, seed: int, threads: int, batch_size: int = 32, lr: float = 5e-4,
          warmup: int = 200, ema_decay: float = 0.999, checkpoint_every_s: float = 600.0,
          init: str | None = None, multires: float = 0.0) -> dict:
    """Train within ``minutes`` of wall time and write the outputs into ``out``; returns the log.
    ``init``: weights to start from; ``multires``: fraction of batches at 1/2 or 1/4 size."""
    start = time.monotonic()
    budget = minutes * 60.0
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = FlowUNet(**DEFAULT_CONFIG)
    if init is not None:
        from safetensors.torch import load_file
        net.load_state_dict({k: v.to(torch.float32) for k, v in load_file(str(init)).items()})
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    stream = data.CropStream(seed)
    g = torch.Generator().manual_seed(seed + 1)
    config = {
        "model": {k: list(v) if isinstance(v, tuple) else v for k, v in DEFAULT_CONFIG.items()},
        "parameters": count_parameters(net),
        "batch_size": batch_size, "lr": lr, "warmup_steps": warmup, "lr_schedule": "linear warm-up, cosine "
        "decay to 0.1x over the wall-time budget", "ema_decay": ema_decay, "optimizer": "Adam", "grad_clip_norm": GRAD_CLIP,
        "time_distribution": f"sigmoid(N({LOGIT_NORMAL_MEAN}, {LOGIT_NORMAL_STD}^2)) with "
        f"{UNIFORM_FRACTION:.0%} uniform", "objective": "MSE(v_pred, eps - x0), x_t = (1-t) x0 + t eps",
        "train_images": list(data.TRAIN_IMAGES), "heldout_images": list(data.HELDOUT_IMAGES),
        "crop": {"size": data.CROP_SIZE, "scale": [data.MIN_SCALE, data.MAX_SCALE], "hflip": 0.5},
        "minutes": minutes, "threads": threads, "init": None if init is None else Path(init).name,
        "multires": multires,
    }
    losses: list[float] = []
    step_times: list[float] = []
    last_ckpt = time.monotonic()

    def make_log(final: bool) -> dict:
        return {"config": config, "seed": seed, "torch_version": torch.__version__,
                "python_version": platform.python_version(), "steps": len(losses),
                "wall_time_s": round(time.monotonic() - start, 2), "finished": final,
                "final_loss_last100": (sum(losses[-100:]) / len(losses[-100:])) if losses else None,
                "loss_curve": downsample_curve(losses)}

    net.train()
    while True:
        elapsed = time.monotonic() - start
        est = max(step_times[-20:]) if step_times else 0.0
        if elapsed + 1.5 * est + SAVE_RESERVE_S > budget and losses:
            break
        if elapsed > budget:  # even the first step did not fit
            break
        t0 = time.monotonic()
        step = len(losses)
        frac = min(elapsed / budget, 1.0)
        cur_lr = lr * min(1.0, (step + 1) / max(warmup, 1)) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = cur_lr
        x0 = stream.next_batch(batch_size)
        if multires > 0 and float(torch.rand((), generator=g)) < multires:
            x0 = contract_batch(x0, 2 if float(torch.rand((), generator=g)) < 0.7 else 4)
        eps = torch.randn(x0.shape, generator=g)
        t = sample_times(batch_size, g)
        loss = flow_loss(net, x0, eps, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
        opt.step()
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.lerp_(pn, 1 - d)
        losses.append(float(loss.detach()))
        step_times.append(time.monotonic() - t0)
        if step % 100 == 0:
            print(f"step {step:6d}  loss {losses[-1]:.4f}  lr {cur_lr:.2e}  "
                  f"elapsed {time.monotonic() - start:7.1f}s", flush=True)
        if time.monotonic() - last_ckpt > checkpoint_every_s:
            save_outputs(out, ema, make_log(False))
            last_ckpt = time.monotonic()

    ema.eval()
    log = make_log(True)
    if time.monotonic() - start + 4 * (sum(step_times[-20:]) / max(len(step_times[-20:]), 1)) < budget:
        log["eval_velocity_mse"] = {
            "train_crops": evaluate(ema, data.training_crops(32, seed + 1000), seed + 2000),
            "heldout_crops": evaluate(ema, data.heldout_crops(32, seed + 1000), seed + 2000),
        }
    log["wall_time_s"] = round(time.monotonic() - start, 2)
    save_outputs(out, ema, log)
    return log


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, validate them (argparse errors exit with status 2 and a message), train."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (0.0 <= args.ema < 1.0):
        parser.error(f"--ema must be in [0, 1), got {args.ema}")
    out = _check_out_dir(parser, args.out)
    if not (0.0 <= args.multires <= 1.0):
        parser.error(f"--multires must be in [0, 1], got {args.multires}")
    if args.init is not None and not Path(args.init).is_file():
        parser.error(f"--init {args.init!r} is not a file")
    log = train(out, args.minutes, args.seed, args.threads, args.batch_size, args.lr, args.warmup, args.ema,
                init=args.init, multires=args.multires)
    print(f"done: {log['steps']} steps in {log['wall_time_s']:.1f}s, final loss (last 100 steps) "
          f"{log['final_loss_last100']:.4f}; wrote {out / 'weights.safetensors'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
