"""Server routes for the web preview.

POST /spectral_progressive/plan.  Body (JSON): the DeltaSchedule widget values (``SCHEDULE_FIELDS``)
plus the preview context (``PREVIEW_FIELDS``: a preview family of schedules/families.py, steps,
scheduler, latent width and height), each checked against the same bounds as the node's widgets.  The
sigmas come from ComfyUI's own scheduler on that family's own model_sampling; the plan from the
planner the samplers use.  Malformed parameters answer 400 with {"error": "<input>: <what was expected>"}.

GET /spectral_progressive/config: the widget names, the context defaults and the families, so the
frontend keeps no list of its own.
"""
from __future__ import annotations

import logging

import comfy.model_base
import comfy.samplers
import comfy.supported_models
from aiohttp import web

from ..schedules.families import PREVIEW_FAMILIES
from ..schedules.preview import preview_payload
from ..schedules.widgets import PREVIEW_FIELDS, SCHEDULE_FIELDS, checked, spec_from_widgets
from . import model_adapter

_registered = False


def family_sigmas(family: str, scheduler: str, steps: int):
    """ComfyUI's sigmas for ``scheduler`` on the preview family's own model_sampling object."""
    preview = PREVIEW_FAMILIES[family].preview
    cls = getattr(comfy.supported_models, preview.model_class)
    cfg = cls(dict(cls.unet_config))
    sampling = comfy.model_base.model_sampling(cfg, getattr(comfy.model_base.ModelType, preview.model_type))
    return comfy.samplers.calculate_sigmas(sampling, scheduler, steps).cpu()


def plan_from_request(body: dict) -> dict:
    """The preview of the DeltaSchedule widgets in ``body`` (checked against the widgets' own bounds) in
    the request's preview context."""
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object")
    ctx = checked(PREVIEW_FIELDS, body)
    if ctx["scheduler"] not in comfy.samplers.SCHEDULER_NAMES:
        raise ValueError(f"scheduler: expected one of {comfy.samplers.SCHEDULER_NAMES}, got {ctx['scheduler']!r}")
    spec = spec_from_widgets(checked(SCHEDULE_FIELDS, body))
    fam = PREVIEW_FAMILIES[ctx["family"]]
    out = preview_payload(spec, family_sigmas(ctx["family"], ctx["scheduler"], ctx["steps"]),
                          (ctx["height"], ctx["width"]), frame=fam.frame, spatial_multiple=fam.multiple,
                          auto_spectrum=fam.preset)
    out["family"] = ctx["family"]
    return out


def config() -> dict:
    """What the frontend reads instead of keeping its own lists: the schedule widgets' names and the
    preview context's fields with their defaults and choices."""
    return {"schedule_keys": [f.name for f in SCHEDULE_FIELDS],
            "context": {f.name: f.default for f in PREVIEW_FIELDS},
            "families": list(PREVIEW_FAMILIES)}


async def config_route(request: web.Request) -> web.Response:
    return web.json_response(config())


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
    inst.routes.get("/spectral_progressive/config")(config_route)
    _registered = True
    logging.info("spectral_progressive: preview route registered")
