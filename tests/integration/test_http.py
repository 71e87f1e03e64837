"""The same workflows through the HTTP API of a real ComfyUI server (main.py --cpu on 127.0.0.1,
tiny model files and the test nodes through --extra-model-paths-config): txt2img with both
formulations on file-loaded SD1.5 / SD3 / WAN (UNETLoader detects them) and in-process-built FLUX,
validation and execution errors, interrupt mid-stage (POST /interrupt), and the server's result
equal to the in-process executor's."""
from __future__ import annotations

import asyncio
import json
import os

import pytest
import torch

from . import harness as H
from .test_sampling import user_sigmas

H.require_comfyui()

HTTP_FAMILIES = ("sd15_file", "sd3", "wan", "flux")


def succeeded(entry: dict) -> dict:
    st = entry["status"]
    assert st.get("status_str") == "success", json.dumps(st)[:3000]
    return entry


def planned_calls(comfy, fam: H.Family, path: str, steps: int, size, rows: int, schedule="manual"):
    """Expected calls, with the user's sigmas from the same tiny model built in this process."""
    mp = comfy.tiny.build(fam.name)
    sig = user_sigmas(comfy, mp, steps=steps)
    plan = H.plan_for(H.spec_from(schedule), sig, size, fam)
    if path == "patch":
        return plan, H.expected_patch_calls(plan, sig, fam.frame, rows)
    return plan, H.expected_sampler_calls(plan, rows)


def good_prompt() -> dict:
    return H.txt2img(H.FAMILIES["sd3"], "allinone", steps=6).prompt()


@pytest.mark.parametrize("fam,path", [(fam, path) for fam in HTTP_FAMILIES for path in ("allinone", "patch")]
                         + [("sd3", "sampler"), ("wan", "sampler")])
def test_http_txt2img(server, comfy, fam, path):
    f = H.FAMILIES[fam]
    h, w = 12, 18
    wf = H.txt2img(f, path, h=h, w=w, steps=8, batch=2)
    entry = succeeded(server.run(wf.prompt()))
    rep = entry["outputs"][wf.report.id]
    shape = rep["latent"][0]["shape"]
    assert shape == ([2, f.channels, 3, h, w] if f.video else [2, f.channels, h, w]) and rep["latent"][0]["finite"]
    plan, want = planned_calls(comfy, f, path, 8, (h, w), rows=4)
    assert len(plan.stages) == 2 and tuple(plan.stages[0].size) != (h, w)
    H.assert_calls(H.observed_calls(rep["calls"]), want)


def test_http_same_prompt_as_inprocess(server, comfy):
    """SaveLatent over HTTP writes the same latent the in-process executor returns (same files, seed)."""
    import safetensors.torch
    fam = H.FAMILIES["sd3"]
    wf = H.txt2img(fam, "sampler", steps=6, seed=21, sampler="dpmpp_2m")
    wf.graph.add("SaveLatent", samples=wf.out, filename_prefix="spectral_it/http")
    entry = succeeded(server.run(wf.prompt()))
    saved = [v for v in entry["outputs"].values() if "latents" in v][0]["latents"][0]
    path = os.path.join(server.root, "output", saved["subfolder"], saved["filename"])
    http_latent = safetensors.torch.load_file(path)["latent_tensor"]
    same = H.txt2img(fam, "sampler", steps=6, seed=21, sampler="dpmpp_2m")
    local = comfy.run(same.prompt())
    assert local.ok, local.error
    torch.testing.assert_close(http_latent, local.out(same.out)["samples"].float(), rtol=1e-5, atol=1e-6)


def test_http_validation_error_names_the_input(server):
    wf = H.txt2img(H.FAMILIES["sd3"], "patch", schedule={"delta": 0.9})
    code, body = server.queue(wf.prompt())
    assert code == 400, body
    node = [v for v in body["node_errors"].values() if v["class_type"] == "DeltaSchedule"]
    assert node and node[0]["errors"][0]["extra_info"]["input_name"] == "delta", body
    succeeded(server.run(good_prompt()))


@pytest.mark.parametrize("path", ("sampler", "patch"))
def test_http_execution_error_names_the_input(server, path):
    wf = H.txt2img(H.FAMILIES["wan"], path, schedule={"scales": "0.05, 1"})
    entry = server.run(wf.prompt())
    st = entry["status"]
    assert st["status_str"] == "error", st
    errs = [m[1] for m in st["messages"] if m[0] == "execution_error"]
    assert errs and "scales: expected a first stage of at least one patch (2 latent pixels)" in errs[0]["exception_message"]
    assert errs[0]["node_type"] == ("SamplerCustomAdvanced" if path == "sampler" else "KSampler")
    succeeded(server.run(good_prompt()))


async def _run_and_interrupt(server, prompt: dict, at: int, timeout: float = 300.0):
    """Queue ``prompt`` with a websocket open; POST /interrupt once its progress bar reaches ``at``.
    Returns (prompt_id, progress values seen, terminal event type)."""
    import aiohttp
    base_ws = server.base.replace("http://", "ws://")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base_ws}/ws?clientId={server.client_id}") as ws:
            async with session.post(server.base + "/prompt", json={"prompt": prompt, "client_id": server.client_id}) as resp:
                body = await resp.json()
                assert resp.status == 200, body
            pid = body["prompt_id"]
            seen, sent, end = [], False, None

            async def listen():
                nonlocal sent, end
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    d = json.loads(msg.data)
                    data = d.get("data", {})
                    if data.get("prompt_id") != pid:
                        continue
                    if d["type"] == "progress":
                        seen.append(data["value"])
                        if data["value"] >= at and not sent:
                            sent = True
                            async with session.post(server.base + "/interrupt", json={"prompt_id": pid}) as r:
                                assert r.status == 200
                    elif d["type"] in ("execution_interrupted", "execution_error", "execution_success"):
                        end = d["type"]
                        return

            await asyncio.wait_for(listen(), timeout)
            return pid, seen, end


@pytest.mark.parametrize("path", ("sampler", "patch"))
def test_http_interrupt_mid_stage_then_next_prompt(server, comfy, path):
    """A long run (300 steps, low stage until step 150) interrupted a few steps in: the server reports
    the interrupt, the low stage had not finished, and the next prompt runs."""
    fam = H.FAMILIES["sd3"]
    wf = H.txt2img(fam, path, h=24, w=24, steps=300,
                   schedule={"mode": "manual", "manual_switch": "150", "manual_unit": "step"})
    pid, seen, end = asyncio.run(_run_and_interrupt(server, wf.prompt(), at=3))
    assert end == "execution_interrupted", (end, seen[-5:])
    plan, _ = planned_calls(comfy, fam, path, 300, (24, 24), rows=2,
                            schedule={"mode": "manual", "manual_switch": "150", "manual_unit": "step"})
    low_steps = plan.stages[0].steps if path != "patch" else sum(
        1 for c in H.expected_patch_calls(plan, user_sigmas(comfy, comfy.tiny.build("sd3"), steps=300), "const", 2)
        if c[0] == tuple(plan.stages[0].size))
    assert seen and max(seen) < low_steps, f"interrupted at step {max(seen)}, low stage has {low_steps} steps"
    print(f"interrupted at step {max(seen)} of the {low_steps}-step low stage")
    hist = server.wait(pid)
    assert hist["status"]["status_str"] == "error"
    assert any(m[0] == "execution_interrupted" for m in hist["status"]["messages"])
    assert wf.report.id not in hist["outputs"]
    succeeded(server.run(good_prompt()))
    assert server.get("/queue")["queue_running"] == []
