"""Switching times (seed 001 Props. 1-2) and the stage planner."""
import math

import pytest
import torch

from spectral_progressive.schedules import plan_stages, stage_switch_times, switch_time
from spectral_progressive.schedules.presets import PRESETS
from spectral_progressive.spectral_core.expansion import aligned_time


def flux_simple_sigmas(steps: int, mu: float = 1.15) -> torch.Tensor:
    """ComfyUI's "simple" scheduler on FLUX's shifted sigma table (closed form, no ComfyUI)."""
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000.0
    table = math.exp(mu) / (math.exp(mu) + (1.0 / t - 1.0))
    ss = len(table) / steps
    return torch.tensor([float(table[-(1 + int(i * ss))]) for i in range(steps)] + [0.0], dtype=torch.float64)


def test_prop1_flux_numbers_from_the_design():
    law = PRESETS["flux"]
    assert round(switch_time(0.01, law.A, law.beta, 0.5 * 128 / 2), 3) == 0.853
    assert round(switch_time(0.01, law.A, law.beta, 0.25 * 128 / 2), 3) == 0.934


def test_prop1_is_the_delta_activation_time():
    # at t_w the Bayes velocity error of a N(0, P) coefficient equals delta (seed 001 App. A.3)
    delta, p = 0.02, 0.7
    t = switch_time(delta, p, 0.0, 1.0)
    var = (1 - t) ** 2 * p + t ** 2  # Var(x_t)
    a, b = (1 - t) * p / var, t / var  # E[x0|x_t] = a x_t, E[eps|x_t] = b x_t
    err = (b - a) ** 2 * var - 2 * (b - a) * t + 1  # E|v*(x_t) - eps|^2 with v = eps - x0
    assert err == pytest.approx(delta, rel=1e-9)


def test_stage_switch_times_decrease_with_scale():
    ts = stage_switch_times(0.01, PRESETS["flux"], (128, 128), (0.25, 0.5, 1.0))
    assert ts[0] > ts[1] and len(ts) == 2


def test_paper_allocation_and_patch_savings_match_the_issue():
    sig = flux_simple_sigmas(50)
    plan = plan_stages(sig, (128, 128), respace="affine")
    assert plan.steps == 50
    assert round(plan.compute_ratio("tokens"), 2) == 1.37
    assert round(plan.compute_ratio("tokens", grid=sig), 2) == 1.20
    # on its mapped full-size grid the patch gets the paper's allocation back
    assert plan.compute_ratio("tokens", grid=plan.full_sigmas()) == pytest.approx(plan.compute_ratio("tokens"))


def test_plan_stage_structure():
    sig = flux_simple_sigmas(20)
    plan = plan_stages(sig, (96, 64), scales=(0.25, 0.5, 1.0), respace="affine")
    assert [s.size for s in plan.stages] == [(24, 16), (48, 32), (96, 64)]
    for a, b in zip(plan.stages, plan.stages[1:]):
        assert a.times[-1] == pytest.approx(a.switch_time)
        g = math.sqrt(b.size[0] * b.size[1] / (a.size[0] * a.size[1]))
        assert b.times[0] == pytest.approx(aligned_time(a.switch_time, g))
        assert all(x > y for x, y in zip(a.times, a.times[1:]))
    assert plan.stages[-1].times[-1] == 0.0
    assert plan.steps == 20


def test_keep_respacing_reuses_the_user_sigmas_below_t_tilde():
    sig = flux_simple_sigmas(30)
    plan = plan_stages(sig, (64, 64), respace="keep")
    s2 = plan.stages[1]
    assert s2.times[0] > plan.stages[0].switch_time
    user = set(round(v, 12) for v in sig.tolist())
    assert all(round(v, 12) in user for v in s2.times[1:])


def test_sizes_snap_to_the_spatial_multiple_and_last_is_exact():
    # affine respacing: with "keep" this small late-switching plan would cost more than plain (dropped)
    plan = plan_stages(torch.linspace(1, 0, 11), (34, 50), scales=(0.5, 1.0), spatial_multiple=4, respace="affine")
    assert plan.stages[0].size == (16, 24)  # 17 -> 16, 25 -> 24
    assert plan.stages[-1].size == (34, 50)
    assert all(v % 4 == 0 for v in plan.stages[0].size)


def test_a_threshold_that_never_fires_means_fewer_stages():
    # img2img entering below the first switch time: stage 1 is skipped
    sig = torch.linspace(0.5, 0.0, 11, dtype=torch.float64)
    plan = plan_stages(sig, (64, 64), entry="signal")
    assert len(plan.stages) == 1 and plan.stages[0].size == (64, 64)
    assert any("skipped" in n for n in plan.notes)


def test_signal_entry_contracts_the_start_time():
    sig = torch.linspace(0.98, 0.0, 21, dtype=torch.float64)
    plan = plan_stages(sig, (64, 64), entry="signal", respace="affine")
    g = 2.0
    assert plan.stages[0].times[0] == pytest.approx(0.98 / (g * 0.02 + 0.98))


def test_switch_at_overrides_prop2():
    plan = plan_stages(torch.linspace(1, 0, 11), (32, 32), switch_at=[0.7])
    assert plan.stages[0].switch_time == 0.7


def test_eps_frame_plans_in_flow_time():
    sig = torch.tensor([14.6, 8.0, 4.0, 2.0, 1.0, 0.5, 0.2, 0.0], dtype=torch.float64)
    plan = plan_stages(sig, (64, 64), frame="eps", scales=(0.5, 1.0))
    t0 = 14.6 / 15.6
    assert plan.stages[0].times[0] == pytest.approx(t0)
    assert plan.stages[0].sigmas[0].item() == pytest.approx(14.6)


@pytest.mark.parametrize("kwargs,name", [
    (dict(delta=0.0), "delta"), (dict(delta=1.5), "delta"), (dict(scales=(0.5, 0.25, 1.0)), "scales"),
    (dict(scales=(0.5, 0.9)), "scales"), (dict(scales=(0.0, 1.0)), "scales"), (dict(spectrum="sdxl"), "spectrum"),
    (dict(respace="warp"), "respace"), (dict(switch_at=[0.2, 0.5]), "switch_at"), (dict(transform="dht"), "transform"),
    (dict(frame="vp"), "frame"), (dict(spatial_multiple=0), "spatial_multiple"), (dict(entry="x"), "entry"),
])
def test_bad_planner_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        plan_stages(torch.linspace(1, 0, 11), (32, 32), **kwargs)


@pytest.mark.parametrize("sig,name", [
    ([1.0], "sigmas"), ([0.5, 0.7, 0.0], "sigmas"), ([1.0, float("nan"), 0.0], "sigmas"), ([2.0, 1.0, 0.0], "sigmas"),
])
def test_bad_sigmas_are_rejected(sig, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        plan_stages(torch.tensor(sig), (32, 32))


def test_bad_latent_size_is_rejected():
    with pytest.raises(ValueError, match="^latent_size"):
        plan_stages(torch.linspace(1, 0, 5), (0, 32))
    with pytest.raises(ValueError, match="^latent_size"):
        plan_stages(torch.linspace(1, 0, 5), (3, 32), spatial_multiple=4)


def test_odd_sizes_keep_the_exact_last_stage_and_snap_low_stages():
    plan = plan_stages(torch.linspace(1, 0, 5), (33, 47), spatial_multiple=2, switch_at=[0.5])
    assert plan.stages[-1].size == (33, 47)
    assert all(v % 2 == 0 for v in plan.stages[0].size)


def test_a_first_stage_smaller_than_one_patch_is_rejected():
    with pytest.raises(ValueError, match="^scales.*one patch"):
        plan_stages(torch.linspace(1, 0, 5), (16, 16), scales=(0.0625, 1.0), spatial_multiple=2)


@pytest.mark.parametrize("args,name", [((0.0, 1, 1, 1), "delta"), ((0.1, -1, 1, 1), "A"), ((0.1, 1, float("nan"), 1), "beta"),
                                       ((0.1, 1, 1, 0.0), "omega")])
def test_switch_time_rejects_bad_arguments(args, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        switch_time(*args)


# ------------------------------------------------------------------------------------------------
# never more compute than the plain run, never without a full-size evaluation at the end (issue 13)
# ------------------------------------------------------------------------------------------------

def _few_step_grids():
    for steps in (1, 2, 4, 8):
        yield steps, torch.linspace(1, 0, steps + 1, dtype=torch.float64)  # CONST, flow-matching style
        t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        yield steps, 3.0 * t / (1 + 2.0 * t)  # shifted (FLUX-like) schedule


@pytest.mark.parametrize("scales", [(0.5, 1.0), (0.25, 0.5, 1.0)])
@pytest.mark.parametrize("respace", ["keep", "affine"])
@pytest.mark.parametrize("size", [(128, 128), (64, 64), (16, 24)])
def test_few_step_plans_never_cost_more_and_end_at_full_size(scales, respace, size):
    for steps, sig in _few_step_grids():
        for min_full in (1, 2):
            plan = plan_stages(sig, size, scales=scales, respace=respace, spatial_multiple=2, min_full_steps=min_full)
            # formulation 1 (sampler) and formulation 2 on the user's own grid: no more model compute
            assert plan.compute_ratio("tokens") >= 1.0 - 1e-12, plan.summary()
            assert plan.compute_ratio("tokens", grid=sig) >= 1.0 - 1e-12, plan.summary()
            # the last min_full steps run at full size in both formulations
            assert plan.stages[-1].size == size
            assert plan.stages[-1].steps >= min(min_full, steps), plan.summary()
            for v in sig[-1 - min(min_full, steps):-1]:
                assert plan.stage_index(float(v)) == len(plan.stages) - 1, (steps, float(v), plan.summary())


def test_a_one_step_run_is_plain_with_the_reason_in_the_summary():
    plan = plan_stages(torch.tensor([1.0, 0.0]), (128, 128), scales=(0.5, 1.0), respace="affine")
    assert len(plan.stages) == 1 and plan.stages[0].size == (128, 128) and plan.stages[0].steps == 1
    assert "run at full size" in plan.summary()
    assert plan.stage_index(1.0) == 0  # the patch runs the network at full size too


def test_a_plan_that_would_cost_more_is_dropped_with_its_cost():
    # "keep" re-adds the aligned time after a late switch: on 10 steps of a small latent, more calls than plain
    plan = plan_stages(torch.linspace(1, 0, 11), (34, 50), scales=(0.5, 1.0), spatial_multiple=4, respace="keep")
    assert len(plan.stages) == 1 and plan.stages[0].steps == 10
    assert "progressive stages dropped: they would cost 1.02x the plain run" in plan.summary()


def test_min_full_steps_moves_the_switch_up_to_where_the_full_size_steps_begin():
    sig = torch.linspace(1, 0, 9, dtype=torch.float64)
    one = plan_stages(sig, (128, 128), switch_at=[0.2], respace="affine")
    three = plan_stages(sig, (128, 128), switch_at=[0.2], respace="affine", min_full_steps=3)
    assert one.stages[0].switch_time == pytest.approx(0.2)  # above where the last step begins (0.125): kept
    # the patch leaves the low stage at T = 0.375, where the last 3 of the 8 steps begin (own time 0.375 / 1.625)
    assert three.stages[0].switch_time == pytest.approx(0.375 / 1.625)
    assert three.stages[0].full_switch_time == pytest.approx(0.375)
    assert three.stages[-1].steps == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_min_full_steps_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="min_full_steps"):
        plan_stages(torch.linspace(1, 0, 11), (64, 64), min_full_steps=bad)
