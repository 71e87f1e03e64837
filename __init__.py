"""Spectral Progressive Diffusion for ComfyUI.

ComfyUI loads this folder from custom_nodes/; ``pip install -e .`` exposes the same folder as the
package ``spectral_progressive``.  Importing it touches no ComfyUI module: the nodes are built only
when ComfyUI asks for them through ``comfy_entrypoint``.

Inside a ComfyUI too old for the V3 node API this pack is written for (``comfy_api.latest`` with
``ComfyExtension`` and ``io.ComfyNode``), the import fails with an ImportError that says so: ComfyUI
then lists the pack as IMPORT FAILED with that message instead of half-registering it.
"""
import sys

WEB_DIRECTORY = "./web"
__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]

# the range the integration suite runs against (tests/run.sh: every archived ComfyUI)
TESTED_COMFYUI = ("0.3.64", "0.33.0")


def _missing_v3_api() -> str | None:
    """None when ComfyUI's V3 node API is importable, else what is missing.  Only called inside
    ComfyUI (where ``comfy`` is already imported), so a plain ``import spectral_progressive`` by
    the tests, the demo or a user's script never imports ComfyUI."""
    try:
        from comfy_api.latest import ComfyExtension, io  # noqa: F401
    except ImportError as exc:
        return f"comfy_api.latest cannot be imported ({exc})"
    missing = [n for n in ("ComfyNode", "Schema", "Custom", "NodeOutput") if not hasattr(io, n)]
    return f"comfy_api.latest.io lacks {', '.join(missing)}" if missing else None


if "comfy" in sys.modules:  # loaded by ComfyUI
    _why = _missing_v3_api()
    if _why:
        raise ImportError(
            f"Spectral Progressive Diffusion needs ComfyUI's V3 node API, and this ComfyUI is too old: {_why}. "
            f"Update ComfyUI (tested with {TESTED_COMFYUI[0]} to {TESTED_COMFYUI[1]}).")


async def comfy_entrypoint():
    """ComfyUI V3 entry point: returns the pack's ComfyExtension (imported lazily)."""
    from .nodes.extension import comfy_entrypoint as _entry

    return await _entry()
