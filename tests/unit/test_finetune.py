"""Sec. 4.3 fine-tuning: the LoRA wrapper, the training loop on tiny models, the App. D.2 samples, the CLI."""
import copy
import json
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from spectral_progressive import finetune as ft
from spectral_progressive.embedded.model import EmbeddedDenoiser, FlowUNet, load_default_model
from spectral_progressive.finetune import cli
from spectral_progressive.spectral_core.samplers import sample_euler
from spectral_progressive.spectral_core.stage_targets import StageSchedule, stage_pair


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/unit/conftest.py


class TinyNet(nn.Module):
    """A tiny velocity model net(x_t, t) -> v with Conv2d and Linear layers."""

    def __init__(self, ch: int = 3, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, width, 3, padding=1)
        self.temb = nn.Linear(8, width)
        self.conv2 = nn.Conv2d(width, ch, 3, padding=1)

    def forward(self, x, t):
        k = torch.arange(1, 5, dtype=x.dtype, device=x.device)
        emb = torch.cat([torch.sin(t[:, None] * k * 3), torch.cos(t[:, None] * k * 3)], dim=1)
        return self.conv2(F.silu(self.conv1(x) + self.temb(emb)[:, :, None, None]))


def _x(n=2, ch=3, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, ch, size, size, generator=g), torch.rand(n, generator=g)


def _sched(size=16):
    return StageSchedule(((size // 2, size // 2), (size, size)), (0.5,))


def test_lora_is_identity_at_init_and_counts_its_parameters():
    net = TinyNet()
    ref = copy.deepcopy(net)
    names = ft.apply_lora(net, rank=2)
    assert names == ["conv1", "temb", "conv2"]
    x, t = _x()
    assert torch.equal(net(x, t), ref(x, t))
    for m in ft.lora_layers(net).values():
        assert not bool(m.lora_B.weight.abs().any()) and bool(m.lora_A.weight.abs().any())
    # rank r: conv r (cin k k) + cout r, linear r (in + out)
    expected = 2 * (3 * 9) + 8 * 2 + 2 * (8 + 8) + 2 * (8 * 9) + 3 * 2
    assert ft.count_trainable(net) == expected == sum(p.numel() for p in ft.adapter_parameters(net))
    assert all(not p.requires_grad for n, p in net.named_parameters() if ".base." in n)
    with pytest.raises(ValueError, match="already"):
        ft.apply_lora(net, rank=2)
    with pytest.raises(ValueError, match="rank"):
        ft.apply_lora(TinyNet(), rank=0)
    with pytest.raises(ValueError, match="targets"):
        ft.apply_lora(TinyNet(), rank=2, targets=["nope"])
    assert ft.apply_lora(TinyNet(), rank=1, targets=["temb"]) == ["temb"]


def test_lora_conv_matches_its_merged_weight():
    base = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    m = ft.LoRAConv2d(base, rank=3, alpha=6.0)
    nn.init.normal_(m.lora_B.weight)
    x = torch.randn(2, 4, 9, 9)
    assert m(x).shape == base(x).shape
    assert torch.allclose(m(x), m.merged()(x), atol=1e-5)
    lin = ft.LoRALinear(nn.Linear(5, 7), rank=2)
    nn.init.normal_(lin.lora_B.weight)
    y = torch.randn(3, 5)
    assert torch.allclose(lin(y), lin.merged()(y), atol=1e-5)
    with pytest.raises(ValueError, match="grouped"):
        ft.LoRAConv2d(nn.Conv2d(4, 4, 3, groups=2))


def test_finetune_trains_only_the_adapter_and_the_adapter_round_trips(tmp_path):
    torch.manual_seed(0)
    net = TinyNet()
    base = {k: v.clone() for k, v in net.state_dict().items()}
    x0, _ = _x(n=6, size=16, seed=1)
    res = ft.finetune(net, x0, _sched(), steps=3, lr=1e-2, rank=2, batch_size=4, eval_samples=2, log_every=0)
    assert res.rank == 2 and res.log["steps"] == 3
    assert res.trainable_parameters == ft.count_trainable(net) == res.log["trainable_parameters"]
    assert set(res.state) == {f"{n}.lora_{ab}.weight" for n in ("conv1", "temb", "conv2") for ab in "AB"}
    now = net.state_dict()
    for k, v in base.items():  # base weights untouched
        name = k.rsplit(".", 1)
        assert torch.equal(now[f"{name[0]}.base.{name[1]}"], v)
    assert any(bool(m.lora_B.weight.abs().any()) for m in ft.lora_layers(net).values())

    path = tmp_path / "adapter.safetensors"
    res.save(str(path), {"note": "test"})
    tensors, meta = ft.read_adapter(path)
    assert set(tensors) == set(res.state) and meta["rank"] == "2" and meta["note"] == "test"
    fresh = TinyNet()
    fresh.load_state_dict(base)
    ft.load_adapter(fresh, path)
    x, t = _x(size=16, seed=2)
    assert torch.allclose(fresh(x, t), net(x, t), atol=1e-6)
    merged = ft.merge_lora(copy.deepcopy(fresh))
    assert not ft.lora_layers(merged) and set(merged.state_dict()) == set(base)
    assert torch.allclose(merged(x, t), net(x, t), atol=1e-5)
    wrong = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="targets"):
        ft.load_adapter(wrong, path)


@pytest.mark.parametrize("rank,variant,lr", [(None, "paper", 3e-3), (4, "own-noise", 1e-2)])
def test_a_few_steps_reduce_the_stage_loss_on_a_fixed_batch(rank, variant, lr):
    torch.manual_seed(0)
    net = FlowUNet(channels=(8, 8, 8), time_dim=16, groups=4, attention=False)
    # smooth data: a few low DCT modes, so the tiny model has something learnable
    g = torch.Generator().manual_seed(3)
    x0 = F.interpolate(torch.randn(8, 3, 4, 4, generator=g), size=(16, 16), mode="bilinear", align_corners=False)
    noises = torch.randn(x0.shape, generator=g)
    sched = _sched(16)
    fixed_t = torch.tensor([0.9, 0.7, 0.55, 0.45, 0.3, 0.2, 0.1, 0.05], dtype=torch.float64)
    fixed_eps = noises if variant == "own-noise" else torch.randn(x0.shape, generator=g)

    def loss_now():
        with torch.no_grad():
            return float(ft.stage_loss(net, x0, fixed_eps, sched, fixed_t)[0])

    before = loss_now()
    res = ft.finetune(net, x0, sched, steps=25, lr=lr, rank=rank, batch_size=8, variant=variant, noises=noises,
                      eval_samples=4, log_every=0)
    after = loss_now()
    assert after < 0.8 * before, (before, after)
    assert res.log["eval"]["after"]["mean"] < res.log["eval"]["before"]["mean"]
    assert sum(res.log["stage_batch_fraction"]) == pytest.approx(1.0)


def test_stage_loss_is_eq14_and_times_follow_the_stage_rule():
    net = TinyNet()
    sched = _sched(16)
    x0, _ = _x(n=4, size=16, seed=4)
    eps = torch.randn_like(x0)
    t = torch.tensor([0.9, 0.6, 0.4, 0.1], dtype=torch.float64)
    loss, stats = ft.stage_loss(net, x0, eps, sched, t)
    manual = []
    for k, i in enumerate([0, 0, 1, 1]):
        p = stage_pair(x0[k:k + 1], eps[k:k + 1], sched, i, t[k:k + 1].float())
        manual.append(((net(p.x_t, p.t) - p.v) ** 2).mean())
    assert float(loss.detach()) == pytest.approx(float(torch.stack(manual).detach().mean()), rel=1e-5)
    assert {i: c for i, (_, c) in stats.items()} == {0: 2, 1: 2}
    tt, st = ft.sample_stage_times(20000, sched, torch.Generator().manual_seed(0))
    assert torch.equal(st, sched.stage_of_time(tt)) and abs(float((st == 0).double().mean()) - 0.5) < 0.02
    to, so = ft.sample_stage_times(20000, sched, torch.Generator().manual_seed(0), "operating")
    assert torch.equal(so, st)  # same stage draws, t spread over (t_i, t~_{i-1}]
    assert float(to[so == 1].max()) > 0.6 and float(to[so == 1].max()) <= sched.start_time(1) + 1e-12


def test_finetune_rejects_bad_arguments():
    net, sched = TinyNet(), _sched(16)
    x0, _ = _x(n=2, size=16)
    for kwargs, word in [(dict(steps=None), "steps"), (dict(steps=0), "steps"), (dict(variant="x"), "variant"),
                         (dict(variant="own-noise"), "noises"), (dict(lr=-1.0), "lr"), (dict(times="x"), "times"),
                         (dict(minutes=0.0), "minutes")]:
        args = dict(steps=1, **{k: v for k, v in kwargs.items() if k != "steps"})
        if "steps" in kwargs:
            args["steps"] = kwargs["steps"]
        with pytest.raises(ValueError, match=word):
            ft.finetune(net, x0, sched, **args)
    with pytest.raises(ValueError, match="samples"):
        ft.finetune(net, x0[..., :8, :8], sched, steps=1)


def test_generate_samples_is_the_packs_euler_over_the_denoiser():
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.3)
    x0, noise = ft.generate_samples(net, 3, (3, 8, 8), steps=4, seed=5, batch_size=2)
    assert x0.shape == noise.shape == (3, 3, 8, 8)
    ref = sample_euler(EmbeddedDenoiser(net), noise.clone(), ft.euler_sigmas(4))
    assert torch.allclose(x0, ref, atol=1e-6)
    # manual Euler in the flow frame: x <- x + (t' - t) v(x, t)
    x = noise.clone()
    for t, tn in zip(ft.euler_sigmas(4)[:-1], ft.euler_sigmas(4)[1:]):
        with torch.no_grad():
            x = x + (tn - t) * net(x, t.expand(3))
    assert torch.allclose(x0, x, atol=1e-5)
    x2, n2 = ft.generate_samples(net, 2, (3, 8, 8), steps=4, seed=5)
    assert torch.equal(n2, noise[:2]) and torch.allclose(x2, x0[:2], atol=1e-6)


@pytest.mark.parametrize("args, word", [
    ([], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--steps", "1", "--minutes", "-1"], "--minutes"),
    (["--steps", "1", "--rank", "-2"], "--rank"),
    (["--steps", "1", "--delta", "1.5"], "--delta"),
    (["--steps", "1", "--stages", "4"], "--stages"),
    (["--steps", "1", "--variant", "x"], "--variant"),
    (["--steps", "1", "--samples", "0"], "--samples"),
    (["--steps", "1", "--threads", "0"], "--threads"),
    (["--steps", "1", "--weights", "/nonexistent/w.safetensors"], "--weights"),
    (["--steps", "1", "--rank", "0", "--alpha", "2"], "--alpha"),
    (["--steps", "1", "--heldout", "-1"], "--heldout"),
    (["--steps", "1", "--variant", "teacher", "--spectral-forcing"], "--variant teacher"),
])
def test_cli_rejects_bad_arguments(tmp_path, capsys, args, word):
    with pytest.raises(SystemExit) as e:
        cli.main(["--out", str(tmp_path / "o"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert word in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_cli_rejects_weights_of_another_architecture(tmp_path, capsys):
    from safetensors.torch import save_file
    bad = tmp_path / "bad.safetensors"
    save_file({"w": torch.zeros(2)}, str(bad))
    with pytest.raises(SystemExit) as e:
        cli.main(["--out", str(tmp_path / "o"), "--steps", "1", "--weights", str(bad)])
    assert e.value.code == 2 and "does not hold the embedded FlowUNet" in capsys.readouterr().err


def test_module_entry_point_help():
    ok = subprocess.run([sys.executable, "-m", "spectral_progressive.finetune", "--help"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and "--variant" in ok.stdout and "own-noise" in ok.stdout


def test_cli_tiny_run_on_the_embedded_model_writes_adapter_and_log(tmp_path):
    out = tmp_path / "run"
    cache = tmp_path / "samples.safetensors"
    args = ["--out", str(out), "--steps", "1", "--samples", "1", "--sample-steps", "1", "--batch-size", "1",
            "--heldout", "1", "--rank", "1", "--save-merged", "--samples-cache", str(cache)]
    assert cli.main(args) == 0
    log = json.loads((out / "train_log.json").read_text())
    assert log["steps"] == 1 and log["rank"] == 1 and log["generation"]["generated"] is True
    assert log["schedule"]["sizes"] == [[32, 32], [64, 64]] and log["files"][0] == "adapter.safetensors"
    assert log["eval"]["set"] == "held-out" and log["eval"]["samples"] == 1
    assert set(log["eval"]["progressive_gap_mse"]) >= {"before", "after"}
    model = load_default_model()
    ft.load_adapter(model.net, out / "adapter.safetensors")
    merged = load_default_model(path=out / "merged_weights.safetensors")
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(model(x, 0.5), merged(x, 0.5), atol=1e-4)
    assert cli.main(args) == 0  # second run: samples from the cache
    assert json.loads((out / "train_log.json").read_text())["generation"]["generated"] is False


def test_progressive_gap_is_zero_for_a_single_stage_plan_and_positive_otherwise():
    from spectral_progressive.schedules import plan_stages
    torch.manual_seed(1)
    net = TinyNet()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.3)
    x0, noise = ft.generate_samples(net, 2, (3, 16, 16), steps=6, seed=2)
    one = plan_stages(ft.euler_sigmas(6, torch.float64), (16, 16), scales=(1.0,))
    assert ft.progressive_gap(net, x0, noise, one) == pytest.approx(0.0, abs=1e-10)
    two = plan_stages(ft.euler_sigmas(6, torch.float64), (16, 16), scales=(0.5, 1.0), switch_at=(0.5,))
    assert ft.progressive_gap(net, x0, noise, two) > 1e-6
    with pytest.raises(ValueError, match="plan"):
        ft.progressive_gap(net, x0, noise, _sched(16))


class GaussianVelocity(nn.Module):
    """The exact Gaussian model as a velocity module: v = (x - E[x0 | x_t]) / t at every grid size.
    Its answers at every stage size agree with its contracted full-size answers (the Wiener gains
    commute with expansion: (1 - t~) P kappa / ((1 - t~)^2 P + t~^2) kappa^-1 ... = the stage's own)."""

    def __init__(self, size: int = 16) -> None:
        super().__init__()
        from spectral_progressive.spectral_core.gaussian import GaussianSpectrumModel
        from spectral_progressive.spectral_core.spectra import PowerLaw
        self.exact = GaussianSpectrumModel.power_law(PowerLaw(20.0, 2.0), (size, size))
        self.scale = nn.Parameter(torch.ones((), dtype=torch.float64))  # a parameter, so the module trains

    def forward(self, x, t):
        return self.scale * (x - self.exact(x, t)) / t.reshape(-1, 1, 1, 1)


def test_teacher_target_of_a_size_consistent_model_is_its_own_velocity():
    # exact Gaussian model: C_0 D(E_t(x; eps), t~) equals the stage-size Bayes denoiser whatever eps
    net, sched = GaussianVelocity(16), _sched(16)
    g = torch.Generator().manual_seed(5)
    x_t = torch.randn(3, 3, 8, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([0.95, 0.7, 0.52], dtype=torch.float64)
    noise = torch.randn(3, 3, 16, 16, generator=g, dtype=torch.float64)
    target = ft.teacher_velocity(net, x_t, t, noise, sched)
    torch.testing.assert_close(target, net(x_t, t).float(), rtol=1e-5, atol=1e-5)
    # so its teacher loss on the low stage is zero, while Eq. 12's target carries the data's noise
    x0 = net.exact.sample((4, 3), generator=g)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t0 = torch.tensor([0.9, 0.8, 0.7, 0.6], dtype=torch.float64)
    teacher_loss, stats = ft.stage_loss(net, x0, eps, sched, t0, teacher=copy.deepcopy(net))
    paper_loss, _ = ft.stage_loss(net, x0, eps, sched, t0)
    assert set(stats) == {0} and float(teacher_loss.detach()) < 1e-9 < 0.01 < float(paper_loss.detach())


def test_teacher_variant_keeps_the_last_stage_on_eq12_and_pulls_the_low_stage_to_the_frozen_model():
    net, sched = GaussianVelocity(16), _sched(16)
    with torch.no_grad():
        net.scale.fill_(1.3)  # a student that disagrees with the teacher by a known factor
    teacher = GaussianVelocity(16)
    g = torch.Generator().manual_seed(6)
    x0 = net.exact.sample((4, 3), generator=g)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t_full = torch.tensor([0.3, 0.2, 0.1, 0.05], dtype=torch.float64)  # all in the last stage
    assert torch.equal(ft.stage_loss(net, x0, eps, sched, t_full, teacher=teacher)[0],
                       ft.stage_loss(net, x0, eps, sched, t_full)[0])
    # in the loop: a student that agrees with the frozen model has zero low-stage training loss
    fresh = GaussianVelocity(16)
    res = ft.finetune(fresh, x0, sched, steps=6, lr=1e-12, batch_size=4, variant="teacher", seed=1,
                      eval_samples=0, log_every=0)
    paper = ft.finetune(GaussianVelocity(16), x0, sched, steps=6, lr=1e-12, batch_size=4, seed=1,
                        eval_samples=0, log_every=0)
    assert "frozen model" in res.log["method"] and res.log["variant"] == "teacher"
    low, last = res.log["train_loss_by_stage"]
    assert low < 1e-9 and last > 0.01 and paper.log["train_loss_by_stage"][0] > 0.01
    assert paper.log["train_loss_by_stage"][1] == pytest.approx(last)  # same draws, same Eq. 12 last stage


def test_teacher_variant_refuses_spectral_forcing():
    from spectral_progressive.embedded.train import make_forcing
    net = FlowUNet(channels=(8, 8, 8), time_dim=16, groups=4, attention=False)
    x0 = torch.zeros(2, 3, 64, 64)
    sched = _sched(64)
    with pytest.raises(ValueError, match="teacher"):
        ft.finetune(net, x0, sched, steps=1, variant="teacher", forcing=make_forcing())


def _trained_adapter(path, seed, rank=2, alpha=None, targets=None, base=None):
    """A TinyNet (weights ``base`` if given) with a rank-``rank`` adapter whose B is random (an adapter
    that changes the model), saved to ``path``."""
    torch.manual_seed(seed)
    net = TinyNet()
    if base is not None:
        net.load_state_dict(base)
    ft.apply_lora(net, rank=rank, alpha=alpha, targets=targets)
    with torch.no_grad():
        for m in ft.lora_layers(net).values():
            m.lora_B.weight.normal_()
    ft.save_adapter(net, path, {"stages": "[[8, 8], [16, 16]]", "switch_times": "[0.5]"})
    return net


def test_averaged_adapter_is_the_mean_of_the_adapters_updates(tmp_path):
    torch.manual_seed(0)
    base = TinyNet().state_dict()
    nets = [_trained_adapter(tmp_path / "a.safetensors", 1, base=base),
            _trained_adapter(tmp_path / "b.safetensors", 2, rank=3, alpha=1.5, base=base)]
    tensors, meta = ft.average_adapters([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    assert meta["rank"] == "5" and float(meta["alpha"]) == 5.0 and meta["switch_times"] == "[0.5]"
    from safetensors.torch import save_file
    save_file(tensors, str(tmp_path / "avg.safetensors"), metadata=meta)
    avg = TinyNet()
    avg.load_state_dict(base)
    ft.load_adapter(avg, tmp_path / "avg.safetensors")
    merged = [ft.merge_lora(copy.deepcopy(n)).state_dict() for n in nets]
    got = ft.merge_lora(copy.deepcopy(avg)).state_dict()
    for k in got:
        torch.testing.assert_close(got[k], (merged[0][k] + merged[1][k]) / 2, rtol=1e-5, atol=1e-6)


def test_averaging_refuses_adapters_of_other_layers_or_plans(tmp_path):
    _trained_adapter(tmp_path / "a.safetensors", 1)
    _trained_adapter(tmp_path / "b.safetensors", 2, targets=["conv1", "conv2"])
    with pytest.raises(ValueError, match="'targets'"):
        ft.average_adapters([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    with pytest.raises(ValueError, match="at least two"):
        ft.average_adapters([tmp_path / "a.safetensors"])


def test_average_cli_writes_the_averaged_adapter_and_refuses_bad_input(tmp_path, capsys):
    from spectral_progressive.finetune import average
    _trained_adapter(tmp_path / "a.safetensors", 1)
    _trained_adapter(tmp_path / "b.safetensors", 2)
    assert average.main(["--out", str(tmp_path / "avg.safetensors"), str(tmp_path / "a.safetensors"),
                         str(tmp_path / "b.safetensors")]) == 0
    assert ft.read_adapter(tmp_path / "avg.safetensors")[1]["rank"] == "4"
    for args, word in [([str(tmp_path / "a.safetensors")], "at least two"),
                       ([str(tmp_path / "a.safetensors"), str(tmp_path / "nope.safetensors")], "is not a file"),
                       (["--out", str(tmp_path / "no" / "x.safetensors")], "does not exist")]:
        argv = args if "--out" in args else ["--out", str(tmp_path / "o.safetensors"), *args]
        if "--out" in args:
            argv = [*args, str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]
        with pytest.raises(SystemExit) as e:
            average.main(argv)
        assert e.value.code == 2 and word in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
