"""The fine-tuning loop of seed 001 Sec. 4.3 for any velocity model ``net(x_t, t) -> v``.

Flow frame: x_t = (1 - t) x0 + t eps, v = eps - x0, t in [0, 1] of shape (B,).

Training pairs (App. D.2): the full-resolution model's own samples, ``generate_samples``: 50-step Euler
(``spectral_core.samplers.sample_euler``, t from 1 to 0 in equal steps) over the model wrapped as a
k-diffusion denoiser (``embedded.model.EmbeddedDenoiser``: D(x, sigma) = x - sigma v(x, sigma)), from
seeded unit noise, which is kept.

Each step (Sec. 4.3): draw a batch of samples x0, t ~ U(0, 1) per sample, assign t to the stage i with
t in (t_i, t_{i-1}] (``StageSchedule.stage_of_time``), draw eps (full-size unit noise; eps^{s_i} is
its s_i band), build the stage input, endpoint, target and training input of Eqs. 11-13
(``spectral_core.stage_targets.stage_pair``) and minimise Eq. 14,

    L = E_{t, x0, eps} || v_theta(x_t^{s_i}, t) - v^{s_i} ||^2

(here the mean over a sample's elements, averaged over the batch, whatever its stage size).
Adam with a constant learning rate (1e-4 in App. D.2), gradient clipping at norm 1.

Options beyond the paper (off by default):
* ``variant="own-noise"``: eps is each sample's OWN generating noise (the noise the 50-step run started
  from), not fresh noise, so the fine-tuned path from a seed keeps that seed's composition;
* ``variant="teacher"``: every stage but the last regresses on the frozen model's own full-size answer
  instead of Eq. 12: the same input x_t^{s_i} at stage time t, the target
  v = (x_t^{s_i} - C_0 D(E_t(x_t^{s_i}; eps), t~)) / t with D(x, t) = x - t v_frozen(x, t)
  (``spectral_core.cross_size``; the new band is the sample's own draw eps, as the run refills it).
  A distillation target with no data noise in it; the last (full-size) stage keeps Eq. 12;
* ``times="operating"``: after the stage assignment, t is mapped affinely from (t_i, t_{i-1}] onto the
  stage's whole operating interval (t_i, t~_{i-1}] (the paper's rule never trains the model on
  (t_{i-1}, t~_{i-1}], where inference queries it at the start of stage i);
* ``forcing`` (seed 004, ``spectral_core.forcing.SpectralForcing``): the prediction is
  v_theta(F_t x_t^{s_i}, t) + (x_t^{s_i} - F_t x_t^{s_i}) / t (forcing.py Eq. 3) at the stage's own time,
  with the law on the full grid (``reference_size``), so every stage's contour is the full grid's at the
  aligned time (``EmbeddedDenoiser`` samples the same way);
* ``weighting`` (seed 003 Eq. 11, ``spectral_core.loss_weighting.SpectralLossWeighting``): the per-sample
  error of Eq. 14 weighted per DCT/Haar band by |X|^alpha of the clean stage data x0^{s_i}, weights
  mean 1 over the coefficients (the learning rate keeps its meaning).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from ..spectral_core.cross_size import contracted_full_prediction
from ..spectral_core.forcing import SpectralForcing
from ..spectral_core.loss_weighting import SpectralLossWeighting
from ..spectral_core.samplers import sample_euler
from ..spectral_core.frames import append_dims
from ..spectral_core.stage_targets import StageSchedule, as_schedule, clean_at_stage, stage_pair
from . import lora

VARIANTS = ("paper", "own-noise", "teacher")
TIMES = ("paper", "operating")
GRAD_CLIP = 1.0
EVAL_TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)  # quantiles of each stage's interval used by ``stage_losses``


def euler_sigmas(steps: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """t from 1 to 0 in ``steps`` equal steps (CONST frame: sigma = t)."""
    return torch.linspace(1.0, 0.0, steps + 1, dtype=dtype)


@torch.no_grad()
def generate_samples(net: nn.Module, n: int, shape: Sequence[int], *, steps: int = 50, seed: int = 0,
                     batch_size: int = 16, progress: Callable[[int, int], None] | None = None,
                     forcing: SpectralForcing | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of the velocity model ``net`` at full size ``shape`` = (C, H, W) by ``steps``-step
    Euler from seeded unit noise (App. D.2); returns (x0, noise), both (n, C, H, W) float32 on the CPU.
    Sample k's noise depends only on (seed, k): a larger n extends a smaller one. ``forcing``: the
    forcing the model was trained with (applied to its input, ``EmbeddedDenoiser``)."""
    from ..embedded.model import EmbeddedDenoiser

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    if len(tuple(shape)) != 3:
        raise ValueError(f"shape: expected (C, H, W), got {tuple(shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    p = next(net.parameters())
    denoiser = EmbeddedDenoiser(net, forcing)
    was_training = net.training
    net.eval()
    noise = torch.stack([torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed * 1_000_003 + k))
                         for k in range(n)])
    sig = euler_sigmas(steps).to(device=p.device)
    outs = []
    for lo in range(0, n, batch_size):
        x = noise[lo:lo + batch_size].to(device=p.device, dtype=p.dtype)
        outs.append(sample_euler(denoiser, x, sig.to(p.dtype)).float().cpu())
        if progress is not None:
            progress(min(lo + batch_size, n), n)
    net.train(was_training)
    return torch.cat(outs), noise


def sample_stage_times(n: int, plan: Any, generator: torch.Generator, times: str = "paper"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """t ~ U(0, 1) and its stage (Sec. 4.3); with ``times="operating"`` t is then mapped affinely from
    (t_i, t_{i-1}] onto (t_i, t~_{i-1}].  Returns (t float64 (n,), stage int64 (n,))."""
    if times not in TIMES:
        raise ValueError(f"times: expected one of {TIMES}, got {times!r}")
    sched = as_schedule(plan)
    t = 1.0 - torch.rand(n, generator=generator, dtype=torch.float64)  # (0, 1]
    stage = sched.stage_of_time(t)
    if times == "operating":
        for i in range(sched.num_stages):
            m = stage == i
            lo, hi = sched.end_time(i), (1.0 if i == 0 else sched.switch_times[i - 1])
            t[m] = lo + (t[m] - lo) * (sched.start_time(i) - lo) / (hi - lo)
    return t, stage


def stage_loss(net: nn.Module, x0: torch.Tensor, noise: torch.Tensor, plan: Any, t: torch.Tensor,
               stage: torch.Tensor | None = None, forcing: SpectralForcing | None = None,
               weighting: SpectralLossWeighting | None = None, teacher: nn.Module | None = None
               ) -> tuple[torch.Tensor, dict[int, tuple[float, int]]]:
    """Eq. 14 on a batch: per-sample mean squared error of v_theta(x_t^{s_i}, t) against v^{s_i}
    (Eqs. 11-13 via ``stage_pair``), averaged over the batch.  ``stage``: each sample's stage (default:
    the Sec. 4.3 rule from t); ``forcing`` / ``weighting``: the options of the module docstring;
    ``teacher``: a frozen velocity model whose contracted full-size answer is the target of every stage
    but the last (``teacher_velocity``, the "teacher" variant).
    Returns (loss, {stage: (sum of per-sample losses, count)})."""
    sched = as_schedule(plan)
    stage = sched.stage_of_time(t) if stage is None else stage
    p = next(net.parameters())
    per_sample, stats = [], {}
    for i in sorted(set(stage.tolist())):
        m = (stage == i).to(x0.device)
        with torch.no_grad():
            pair = stage_pair(x0[m], noise[m], sched, i, t[m.cpu()].to(x0.dtype))
        x_t, t_p = pair.x_t.to(device=p.device, dtype=p.dtype), pair.t.to(device=p.device, dtype=p.dtype)
        pred = net(x_t, t_p) if forcing is None else forcing.velocity(net, x_t, t_p)
        if teacher is not None and i < sched.num_stages - 1:
            target = teacher_velocity(teacher, x_t, t_p, noise[m].to(device=p.device, dtype=p.dtype), sched)
        else:
            target = pair.v.to(device=p.device, dtype=torch.float32)
        if weighting is None:
            err = ((pred.float() - target) ** 2).flatten(1).mean(1)
        else:
            err = weighting.loss(pred.float(), target, clean_at_stage(x0[m], sched, i).to(target))
        per_sample.append(err)
        stats[i] = (float(err.detach().sum()), int(err.numel()))
    return torch.cat(per_sample).mean(), stats


@torch.no_grad()
def teacher_velocity(teacher: nn.Module, x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                     plan: Any) -> torch.Tensor:
    """The "teacher" target of a low stage: v = (x_t - C_0 D(E_t(x_t; eps), t~)) / t (float32), with
    D(x, t) = x - t v_teacher(x, t) the frozen model's x_0 prediction at full size
    (``spectral_core.cross_size``); ``x_t`` (B, C, h, w) at stage times ``t`` (B,), ``noise`` the
    samples' full-size unit noise, whose high band fills the new band as the run's refill does."""
    sched = as_schedule(plan)

    def denoise(big: torch.Tensor, t_big: torch.Tensor) -> torch.Tensor:
        return big - append_dims(t_big, big.ndim) * teacher(big, t_big)

    spectrum = sched.stage_spectrum(sched.num_stages - 1)  # the full grid's law for "matched", else None
    x0_lo = contracted_full_prediction(denoise, x_t, t, sched.full_size, transform=sched.transform, noise=noise,
                                       refill=sched.refill, spectrum=spectrum)
    return ((x_t - x0_lo) / append_dims(t, x_t.ndim)).float()


@torch.no_grad()
def stage_losses(net: nn.Module, x0: torch.Tensor, noise: torch.Tensor, plan: Any,
                 quantiles: Sequence[float] = EVAL_TIMES, forcing: SpectralForcing | None = None) -> dict[str, float]:
    """Eq. 14 per stage on a fixed batch: every sample at the given quantiles of each stage's paper
    interval (t_i, t_{i-1}], with the given noise (plain MSE; the network on the forced input with
    ``forcing``).  {"stage1": ..., "mean": ...}."""
    sched = as_schedule(plan)
    out: dict[str, float] = {}
    for i in range(sched.num_stages):
        lo, hi = sched.end_time(i), (1.0 if i == 0 else sched.switch_times[i - 1])
        vals = []
        for q in quantiles:
            t = torch.full((x0.shape[0],), lo + q * (hi - lo), dtype=torch.float64)
            loss, _ = stage_loss(net, x0, noise, sched, t, torch.full((x0.shape[0],), i, dtype=torch.int64), forcing)
            vals.append(float(loss))
        out[f"stage{i + 1}"] = sum(vals) / len(vals)
    out["mean"] = sum(out.values()) / sched.num_stages
    return out


@torch.no_grad()
def progressive_gap(net: nn.Module, x0_ref: torch.Tensor, noise: torch.Tensor, plan: Any,
                    batch_size: int = 16, forcing: SpectralForcing | None = None) -> float:
    """Same-seed gap of progressive sampling: mean squared difference between formulation 1
    (``sample_progressive``, Euler on the plan's stages, refill from the seed noise) run from ``noise``
    and ``x0_ref``, the full-size model's own samples from the same noise (DESIGN.md, secondary
    metric).  ``plan``: a ``StagePlan`` on a CONST (flow) grid starting at t = 1; ``forcing``: the
    model's forcing (``EmbeddedDenoiser``)."""
    from ..embedded.model import EmbeddedDenoiser
    from ..spectral_core.progressive import sample_progressive

    if not hasattr(plan, "user_sigmas"):
        raise ValueError("plan: expected a StagePlan (progressive_gap samples with it)")
    p = next(net.parameters())
    den = EmbeddedDenoiser(net, forcing)
    was_training = net.training
    net.eval()
    total = 0.0
    for lo in range(0, x0_ref.shape[0], batch_size):
        eps = noise[lo:lo + batch_size].to(device=p.device, dtype=p.dtype)
        out = sample_progressive(den, eps.clone(), plan.user_sigmas.to(p.dtype), plan=plan, noise=eps)
        total += float(((out.float().cpu() - x0_ref[lo:lo + batch_size].float()) ** 2).flatten(1).mean(1).sum())
    net.train(was_training)
    return total / x0_ref.shape[0]


@dataclass
class FinetuneResult:
    """What ``finetune`` returns: the adapted ``model`` (LoRA layers inside, or the fully fine-tuned
    module), the ``state`` to save (adapter tensors only for LoRA, the full state dict otherwise), the
    LoRA ``rank`` (None: full fine-tune), the trainable parameter count and the training ``log``."""

    model: nn.Module
    state: dict[str, torch.Tensor]
    rank: int | None
    trainable_parameters: int
    log: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str, metadata: dict[str, str] | None = None) -> None:
        """LoRA: the adapter (``lora.save_adapter``); full fine-tune: all weights (safetensors)."""
        if self.rank is not None:
            lora.save_adapter(self.model, path, metadata)
        else:
            from safetensors.torch import save_file
            save_file({k: v.detach().float().contiguous().cpu() for k, v in self.model.state_dict().items()},
                      str(path), metadata={"format": "pt", **(metadata or {})})


def finetune(model: nn.Module, samples: torch.Tensor, plan: Any, *, steps: int | None = None,
             minutes: float | None = None, lr: float = 1e-4, rank: int | None = None, alpha: float | None = None,
             batch_size: int = 8, variant: str = "paper", noises: torch.Tensor | None = None, seed: int = 0,
             times: str = "paper", eval_samples: int = 16,
             eval_set: tuple[torch.Tensor, torch.Tensor] | None = None, log_every: int = 50,
             callback: Callable[[int, float], None] | None = None, forcing: SpectralForcing | None = None,
             weighting: SpectralLossWeighting | None = None) -> FinetuneResult:
    """Fine-tune the velocity model ``model`` (``model(x_t, t) -> v``) on the stage targets of Sec. 4.3.

    ``samples``: clean full-size samples (N, C, H, W), the model's own (``generate_samples``);
    ``plan``: a ``schedules.StagePlan`` or a ``StageSchedule``; ``steps`` and/or ``minutes``: stop at the
    first reached (one is required); ``rank``: LoRA rank (``lora.apply_lora`` in place, only the adapters
    train) or None for a full fine-tune; ``alpha``: LoRA scale numerator (default = rank);
    ``variant``: "paper" (fresh noise every step), "own-noise" (each sample's generating noise,
    ``noises`` (N, C, H, W)) or "teacher" (fresh noise, low stages regress on the frozen model's
    contracted full-size answer; module docstring); ``times``: "paper" or "operating" (module docstring); ``eval_set``:
    held-out (x0, generating noise) for the before/after per-stage loss (``stage_losses``; the
    generating noise for "own-noise", a fixed fresh noise for "paper"), else the first ``eval_samples``
    training samples (0: no evaluation); ``forcing`` / ``weighting``: the options of the module docstring
    (the evaluation is the plain Eq. 14 with the forcing).
    The model is modified in place (pass a copy to keep the original).
    """
    sched: StageSchedule = as_schedule(plan)
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise ValueError("model: expected a torch module with parameters (net(x_t, t) -> v)")
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4 or not samples.is_floating_point():
        raise ValueError(f"samples: expected a float tensor (N, C, H, W), got "
                         f"{tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__}")
    if tuple(samples.shape[-2:]) != sched.full_size:
        raise ValueError(f"samples: expected the plan's full size {sched.full_size}, got {tuple(samples.shape[-2:])}")
    if steps is None and minutes is None:
        raise ValueError("steps/minutes: give at least one stopping rule")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"minutes: expected a positive number, got {minutes!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    if times not in TIMES:
        raise ValueError(f"times: expected one of {TIMES}, got {times!r}")
    if variant == "own-noise" and (not isinstance(noises, torch.Tensor) or tuple(noises.shape) != tuple(samples.shape)):
        raise ValueError(f"noises: variant 'own-noise' needs each sample's generating noise, a tensor of shape "
                         f"{tuple(samples.shape)}")
    if variant == "teacher" and forcing is not None:
        raise ValueError("variant: 'teacher' is not defined with spectral forcing (the teacher's input would "
                         "need the same forcing); use variant 'paper' with forcing")
    start = time.monotonic()
    n = samples.shape[0]
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    if eval_set is not None:
        if (not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2
                or any(not isinstance(e, torch.Tensor) or e.ndim != 4 or tuple(e.shape[1:]) != tuple(samples.shape[1:])
                       or e.shape[0] != eval_set[0].shape[0] for e in eval_set)):
            shape = ", ".join(map(str, samples.shape[1:]))
            raise ValueError(f"eval_set: expected (x0, noise), two tensors (K, {shape})")
        eval_x0, eval_own = eval_set
        eval_samples = int(eval_x0.shape[0])
    else:
        eval_x0 = samples[: max(1, min(eval_samples, n))]
        eval_own = noises[: eval_x0.shape[0]] if isinstance(noises, torch.Tensor) else None
    eval_noise = (eval_own if variant == "own-noise"
                  else torch.randn(eval_x0.shape, generator=torch.Generator().manual_seed(seed + 7919)))
    eval_x0, eval_noise = eval_x0.to(dev), eval_noise.to(device=dev, dtype=eval_x0.dtype)
    total_params = sum(p.numel() for p in model.parameters())
    before = stage_losses(model, eval_x0, eval_noise, sched, forcing=forcing) if eval_samples > 0 else None

    teacher = None
    if variant == "teacher":  # the frozen model as it is before any adapter
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
    adapted: list[str] = []
    if rank is not None:
        adapted = lora.apply_lora(model, rank, alpha)
        params = lora.adapter_parameters(model)
    else:
        model.requires_grad_(True)
        params = [p for p in model.parameters()]
    trainable = sum(p.numel() for p in params)
    if log_every:
        what = f"LoRA rank {rank} on {len(adapted)} layers" if rank is not None else "full fine-tune"
        print(f"{what}: {trainable} trainable parameters of {total_params} ({100.0 * trainable / total_params:.1f}%)",
              flush=True)
    opt = torch.optim.Adam(params, lr=lr)
    was_training = model.training
    model.train()
    losses: list[float] = []
    stage_counts = [0] * sched.num_stages
    stage_sums = [0.0] * sched.num_stages
    step_times: list[float] = []
    budget = None if minutes is None else minutes * 60.0
    while True:
        if steps is not None and len(losses) >= steps:
            break
        if budget is not None and losses and time.monotonic() - start + 1.5 * max(step_times[-20:]) > budget:
            break
        t0 = time.monotonic()
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        x0 = samples[idx]
        eps = noises[idx] if variant == "own-noise" else torch.randn(x0.shape, generator=gen)
        x0, eps = x0.to(dev), eps.to(device=dev, dtype=x0.dtype)
        t, stage = sample_stage_times(batch_size, sched, gen, times)
        with torch.enable_grad():
            loss, stats = stage_loss(model, x0, eps, sched, t, stage, forcing, weighting, teacher)
            opt.zero_grad(set_to_none=True)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        losses.append(float(loss.detach()))
        for i, (s, c) in stats.items():
            stage_sums[i] += s
            stage_counts[i] += c
        step_times.append(time.monotonic() - t0)
        if callback is not None:
            callback(len(losses), losses[-1])
        if log_every and len(losses) % log_every == 0:
            recent = losses[-log_every:]
            print(f"step {len(losses):6d}  loss {sum(recent) / len(recent):.4f}  "
                  f"elapsed {time.monotonic() - start:7.1f}s", flush=True)
    model.train(was_training)
    after = stage_losses(model, eval_x0, eval_noise, sched, forcing=forcing) if eval_samples > 0 else None
    state = lora.adapter_state_dict(model) if rank is not None else dict(model.state_dict())
    log = {
        "method": ("seed 001 Sec. 4.3 stage-specific velocity targets (Eqs. 11-14)" if teacher is None else
                   "Sec. 4.3 stages, low stages regressed on the frozen model's contracted full-size answer "
                   "(spectral_core.cross_size), the last stage on Eq. 12"),
        "steps": len(losses), "wall_time_s": round(time.monotonic() - start, 2),
        "lr": lr, "optimizer": "Adam, constant learning rate", "grad_clip_norm": GRAD_CLIP,
        "batch_size": batch_size, "variant": variant, "times": times, "seed": seed,
        "rank": rank, "alpha": (float(rank) if alpha is None else float(alpha)) if rank is not None else None,
        "adapted_layers": len(adapted), "trainable_parameters": trainable, "model_parameters": total_params,
        "samples": n,
        "spectral_forcing": None if forcing is None else forcing.to_dict(),
        "loss_weighting": None if weighting is None else weighting.to_dict(),
        "schedule": {"sizes": [list(s) for s in sched.sizes], "switch_times": list(sched.switch_times),
                     "start_times": [sched.start_time(i) for i in range(sched.num_stages)],
                     "transform": sched.transform, "refill": sched.refill},
        "stage_batch_fraction": [c / max(1, sum(stage_counts)) for c in stage_counts],
        "train_loss_by_stage": [s / c if c else None for s, c in zip(stage_sums, stage_counts)],
        "final_loss_last100": (sum(losses[-100:]) / len(losses[-100:])) if losses else None,
        "loss_curve": _curve(losses),
        "eval": None if before is None else {"samples": int(eval_x0.shape[0]), "quantiles": list(EVAL_TIMES),
                                             "set": "held-out" if eval_set is not None else "training samples",
                                             "noise": "own" if variant == "own-noise" else "fixed fresh",
                                             "before": before, "after": after},
    }
    return FinetuneResult(model, state, rank, trainable, log)


def _curve(losses: list[float], points: int = 200) -> list[list[float]]:
    """[[step, mean loss over the bin]] for at most ``points`` equal bins (the trainer's curve format)."""
    from ..embedded.train import downsample_curve
    return downsample_curve(losses, points)
