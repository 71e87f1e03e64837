"""Pure math: switching times (seed 001 Props. 1-2), presets, the stage planner."""
from .planner import Stage, StagePlan, plan_stages, stage_sizes
from .presets import PRESETS, resolve_spectrum
from .switching import band_edge, stage_switch_times, switch_time

__all__ = ["PRESETS", "Stage", "StagePlan", "band_edge", "plan_stages", "resolve_spectrum", "stage_sizes",
           "stage_switch_times", "switch_time"]
