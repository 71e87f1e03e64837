"""Pure-torch spectral core: transforms, expansion/contraction, both formulations of progressive
sampling, power spectra.  No ComfyUI import anywhere below this package."""
from .calibration import Calibration, calibrate
from .denoiser import progressive_denoiser, wiener_gain
from .expansion import aligned_time, band_limited_upsample, contract, contracted_time, expand, growth
from .frames import FRAMES, Frame, get_frame
from .passthrough import (PassthroughDenoiser, activation_times, gaussian_change, passthrough_gain, relative_change,
                          release_times, tolerated_delta)
from .plan import (Stage, StagePlan, affine_respace, call_cost, plan_cost, respace_sigmas, restart_below,
                   restart_sigmas, speedup, stage_scale, stage_sizes)
from .progressive import sample_progressive
from .samplers import sample_ab2, sample_euler
from .schedule_design import PlanDesign, ScheduleDesign, design_for_plan, design_sigmas
from .spectra import PRESETS, PowerLaw, PowerLawFit, fit_power_law, measure_spectrum, radial_power, resolve_spectrum
from .transforms import TRANSFORMS, down, forward, inverse, radial_frequency, up

__all__ = [
    "Calibration", "FRAMES", "Frame", "PassthroughDenoiser", "PowerLaw", "PowerLawFit", "TRANSFORMS", "aligned_time", "band_limited_upsample", "calibrate",
    "contract", "contracted_time", "down", "expand", "fit_power_law", "forward", "get_frame", "growth",
    "inverse", "measure_spectrum", "progressive_denoiser", "radial_frequency", "radial_power",
    "sample_ab2", "sample_euler", "sample_progressive", "up", "wiener_gain", "activation_times", "passthrough_gain",
    "relative_change", "tolerated_delta", "release_times", "gaussian_change",
]
__all__ += ["PlanDesign", "ScheduleDesign", "design_for_plan", "design_sigmas"]  # seed 002 schedules
