"""The plan as data (spectral_core/plan.py), its sigma rework and cost, and the one-place tables
(model families, schedule widgets) against the library they describe."""
import math

import pytest
import torch

from spectral_progressive.schedules import plan_stages
from spectral_progressive.schedules.families import DEFAULT_PRESET, FAMILIES, PREVIEW_FAMILIES, preset_for
from spectral_progressive.schedules.spec import DEFAULT_SPEC
from spectral_progressive.schedules.widgets import PREVIEW_FIELDS, SCHEDULE_FIELDS, checked, spec_from_widgets
from spectral_progressive.spectral_core import PRESETS, PowerLaw, progressive_denoiser, sample_euler
from spectral_progressive.spectral_core.frames import FRAMES, get_frame
from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
from spectral_progressive.spectral_core.plan import (affine_respace, call_cost, call_sizes, plan_cost, respace_sigmas,
                                                     restart_below, restart_sigmas, speedup, stage_scale, stage_sizes)


def test_restart_below_keeps_the_grid_strictly_below_the_start():
    assert restart_below(0.55, [1.0, 0.75, 0.5, 0.25, 0.0]) == [0.55, 0.5, 0.25, 0.0]
    assert restart_below(0.5 + 1e-9, [1.0, 0.5, 0.0]) == [0.5 + 1e-9, 0.0]  # within tolerance: the same point


def test_affine_respace_moves_the_first_time_and_keeps_the_last():
    out = affine_respace([0.6, 0.4, 0.2, 0.0], 0.75)
    assert out == pytest.approx([0.75, 0.5, 0.25, 0.0])
    out = affine_respace([0.6, 0.4, 0.1], 0.8)  # t -> 0.1 + (t - 0.1) * 0.7 / 0.5
    assert out == pytest.approx([0.8, 0.1 + 0.3 * 1.4, 0.1])
    assert affine_respace([0.3], 0.7) == [0.7, 0.3]


def test_sigma_rework_in_the_eps_frame_keeps_the_users_values():
    eps = get_frame("eps")
    sig = [14.6, 4.0, 1.0, 0.25, 0.0]
    t_start = 0.5  # sigma 1
    out = restart_sigmas(sig, t_start, eps)
    assert out.dtype == torch.float32
    assert out.tolist() == pytest.approx([1.0, 0.25, 0.0])
    # "affine": same count, the first mapped to t_start, the last kept
    aff = respace_sigmas(sig, 0.9, eps, "affine")
    assert len(aff) == len(sig) and float(aff[0]) == pytest.approx(9.0) and float(aff[-1]) == 0.0
    # "keep": the current sigma (sig[0]) is where the latent was, never a step of the rest
    keep = respace_sigmas([4.0, 14.6 / 2, 2.0, 0.0], 0.9, eps, "keep")
    assert keep.tolist() == pytest.approx([9.0, 7.3, 2.0, 0.0])


def test_plan_cost_counts_every_call_of_both_formulations():
    sig = torch.linspace(1, 0, 11, dtype=torch.float64)
    plan = plan_stages(sig, (64, 48), switch_at=[0.55], respace="keep")
    low = plan.stages[0]
    assert call_sizes(plan) == [low.size] * low.steps + [(64, 48)] * plan.stages[1].steps
    area = low.size[0] * low.size[1] / (64 * 48)
    assert plan_cost(plan) == pytest.approx(low.steps * area + plan.stages[1].steps)
    assert plan_cost(plan, power=2) == pytest.approx(low.steps * area ** 2 + plan.stages[1].steps)
    assert plan_cost(plan, extra_low_calls=1) == pytest.approx(plan_cost(plan) + area)
    assert speedup(plan) == pytest.approx(10 / plan_cost(plan)) and speedup(plan) == plan.compute_ratio("tokens")
    patch = call_sizes(plan, grid=sig)
    assert len(patch) == 10 and speedup(plan, grid=sig) == pytest.approx(10 / call_cost(patch, (64, 48)))


def test_stage_sizes_and_scale_are_the_planners():
    sizes = stage_sizes((33, 47), (0.25, 0.5, 1.0), 2)
    assert sizes == [(8, 12), (16, 24), (33, 47)]
    assert stage_scale(sizes[1], (33, 47)) == pytest.approx(min(16 / 33, 24 / 47))
    plan = plan_stages(torch.linspace(1, 0, 21, dtype=torch.float64), (33, 47), scales=(0.5, 1.0),
                       spatial_multiple=2, delta=0.05)
    assert [tuple(s.size) for s in plan.stages] == stage_sizes((33, 47), (0.5, 1.0), 2)


def test_progressive_denoiser_takes_a_preset_name_like_the_planner():
    sig = torch.linspace(1, 0, 9, dtype=torch.float64)
    plan = plan_stages(sig, (16, 16), spectrum="flux", switch_at=[0.6])
    model = GaussianSpectrumModel.power_law(PowerLaw(3.0, 2.0), (16, 16))
    x = torch.randn(1, 2, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    by_name = sample_euler(progressive_denoiser(model, plan, high="wiener", spectrum="flux"), x, sig)
    by_law = sample_euler(progressive_denoiser(model, plan, high="wiener", spectrum=PRESETS["flux"]), x, sig)
    assert torch.equal(by_name, by_law)
    with pytest.raises(ValueError, match="^spectrum"):
        progressive_denoiser(model, plan, high="wiener", spectrum="sdxl")


def test_the_family_table_names_known_presets_frames_and_model_classes():
    for fmt, fam in FAMILIES.items():
        assert fam.preset in PRESETS, fmt
        assert preset_for(fmt) == fam.preset
    assert preset_for("NoSuchFormat") == DEFAULT_PRESET
    assert set(PREVIEW_FAMILIES) == {"flux", "sd3", "sd15", "wan"}
    for name, fam in PREVIEW_FAMILIES.items():
        assert fam.frame in FRAMES and isinstance(fam.multiple, int) and fam.multiple >= 1, name


def test_widget_defaults_are_the_library_defaults():
    values = checked(SCHEDULE_FIELDS, {})
    assert spec_from_widgets(values) == DEFAULT_SPEC
    assert DEFAULT_SPEC.respace == plan_stages.__kwdefaults__["respace"]
    ctx = checked(PREVIEW_FIELDS, {})
    assert ctx["family"] in PREVIEW_FAMILIES


@pytest.mark.parametrize("name,value", [("delta", 0.9), ("delta", float("nan")), ("stages", 5), ("transform", "dht"),
                                        ("custom_beta", 11.0), ("manual_unit", "seconds")])
def test_a_request_outside_a_widgets_bounds_names_the_widget(name, value):
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        checked(SCHEDULE_FIELDS, {name: value})


def test_widget_errors_name_the_widget_not_the_core_argument():
    # a node's values (ComfyUI checked the bounds, NaN passes them): the core's "spectrum.A" is custom_A
    values = dict(checked(SCHEDULE_FIELDS, {"spectrum": "custom"}), custom_A=math.nan)
    with pytest.raises(ValueError, match="^custom_A: expected a positive finite number"):
        spec_from_widgets(values)
    values = checked(SCHEDULE_FIELDS, {"mode": "manual", "manual_switch": "0.9, 0.5"})
    with pytest.raises(ValueError, match="^manual_switch: expected 1 values"):
        spec_from_widgets(values)
