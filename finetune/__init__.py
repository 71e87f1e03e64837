"""Seed 001 Sec. 4.3 spectral fine-tuning for any velocity model ``net(x_t, t) -> v`` (flow frame).

- ``finetune(model, samples, plan, *, steps, lr, rank=None, ...)``: the training loop on the
  stage-specific velocity targets (Eqs. 11-14, ``spectral_core.stage_targets``); LoRA (``rank``) or a
  full fine-tune (``rank=None``); returns a ``FinetuneResult`` (model, adapter/state, log)
- ``generate_samples``: the training pairs of App. D.2, the full-resolution model's own 50-step Euler
  samples (and the noise each one came from, for ``variant="own-noise"``)
- ``stage_loss`` / ``stage_losses`` / ``sample_stage_times``: Eq. 14 and the Sec. 4.3 time draw
- ``teacher_velocity``: the target of the "teacher" variant (beyond the paper): the frozen model's
  contracted full-size answer (``spectral_core.cross_size``)
- ``progressive_gap``: same-seed distance of progressive samples to the full-size model's samples
- LoRA: ``apply_lora``, ``save_adapter``, ``load_adapter``, ``merge_lora``, ``LoRALinear``, ``LoRAConv2d``;
  ``average_adapters`` (and ``python -m spectral_progressive.finetune.average``): the exact mean of
  several adapters' updates
- command line: ``python -m spectral_progressive.finetune --help`` (the embedded model)
"""
from .lora import (LoRAConv2d, LoRALinear, adapter_parameters, average_adapters, adapter_state_dict, apply_lora, count_trainable,
                   load_adapter, lora_layers, merge_lora, read_adapter, save_adapter)
from .loop import (TIMES, VARIANTS, FinetuneResult, euler_sigmas, finetune, generate_samples, progressive_gap,
                   sample_stage_times, stage_loss, stage_losses, teacher_velocity)

__all__ = [
    "FinetuneResult", "LoRAConv2d", "LoRALinear", "TIMES", "VARIANTS", "adapter_parameters", "average_adapters", "adapter_state_dict",
    "apply_lora", "count_trainable", "euler_sigmas", "finetune", "generate_samples", "load_adapter", "lora_layers",
    "merge_lora", "progressive_gap", "read_adapter", "sample_stage_times", "save_adapter", "stage_loss", "stage_losses",
    "teacher_velocity",
]
