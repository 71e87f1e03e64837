"""Server route for the web preview: POST /spectral_progressive/plan.

Body (JSON): the DeltaSchedule widget values (mode, delta, stages, scales, transform, spectrum,
custom_A, custom_beta, refill, respace, manual_switch, manual_unit) plus the preview context:
family (flux | sd3 | sd15 | wan), steps, scheduler, width, height (latent pixels).  The sigmas come
from ComfyUI's own scheduler on that family's own model_sampling; the plan from the planner the
samplers use.  Malformed parameters answer 400 with {"error": "<input>: <what was expected>"}.
"""
from __future__ import annotations

import logging

import comfy.model_base
import comfy.samplers
import comfy.supported_models
from aiohttp import web

from ..schedules.preview import preview_payload
from . import model_adapter
from .schedule_nodes import build_spec

FAMILIES = {  # family -> (supported_models class, ModelType its BaseModel uses, spatial multiple, frame, preset)
    "flux": ("Flux", "FLUX", 2, "const", "flux"),
    "sd3": ("SD3", "FLOW", 2, "const", "flux"),
    "sd15": ("SD15", "EPS", 8, "eps", "flux"),
    "wan": ("WAN21_T2V", "FLOW", 2, "const", "wan"),
}
_registered = False


def family_sigmas(family: str, scheduler: str, steps: int):
    """ComfyUI's sigmas for ``scheduler`` on the family's own model_sampling object."""
    cls_name, model_type = FAMILIES[family][:2]
    cls = getattr(comfy.supported_models, cls_name)
    cfg = cls(dict(cls.unet_config))
    sampling = comfy.model_base.model_sampling(cfg, getattr(comfy.model_base.ModelType, model_type))
    return comfy.samplers.calculate_sigmas(sampling, scheduler, steps).cpu()


def _num(body: dict, key: str, cast, default, lo, hi):
    try:
        v = cast(body.get(key, default))
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected a number, got {body.get(key)!r}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{key}: expected a value in [{lo}, {hi}], got {v!r}")
    return v


def plan_from_request(body: dict) -> dict:
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object")
    family = body.get("family", "flux")
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {family!r}")
    scheduler = body.get("scheduler", "simple")
    if scheduler not in comfy.samplers.SCHEDULER_NAMES:
        raise ValueError(f"scheduler: expected one of {comfy.samplers.SCHEDULER_NAMES}, got {scheduler!r}")
    steps = _num(body, "steps", int, 20, 1, 1000)
    width = _num(body, "width", int, 128, 1, 4096)
    height = _num(body, "height", int, 128, 1, 4096)
    spec = build_spec(str(body.get("mode", "delta")), _num(body, "delta", float, 0.01, 1e-9, 1 - 1e-9),
                      _num(body, "stages", int, 2, 1, 4), str(body.get("scales", "")), str(body.get("transform", "dct")),
                      str(body.get("spectrum", "auto")), _num(body, "custom_A", float, 203.62, 1e-12, 1e12),
                      _num(body, "custom_beta", float, 1.9155, 0, 20), str(body.get("refill", "paper")),
                      str(body.get("respace", "affine")), str(body.get("manual_switch", "")),
                      str(body.get("manual_unit", "sigma")))
    _, _, multiple, frame, auto = FAMILIES[family]
    out = preview_payload(spec, family_sigmas(family, scheduler, steps), (height, width), frame=frame,
                          spatial_multiple=multiple, auto_spectrum=auto)
    out["family"] = family
    return out


async def plan_route(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except Exception:  # noqa: BLE001 - any unparsable body
        return web.json_response({"error": "body: expected a JSON object"}, status=400)
    try:
        return web.json_response(plan_from_request(body))
    except ValueError as exc:
        return web.json_response({"error": str(model_adapter.renamed(exc))}, status=400)


def register() -> None:
    """Add the route to ComfyUI's server (once); a no-op without a running PromptServer."""
    global _registered
    if _registered:
        return
    try:
        from server import PromptServer
    except ImportError:
        return
    inst = getattr(PromptServer, "instance", None)
    if inst is None:
        return
    inst.routes.post("/spectral_progressive/plan")(plan_route)
    _registered = True
    logging.info("spectral_progressive: preview route registered")
