"""Spectral Progressive Diffusion for ComfyUI.

ComfyUI loads this folder from custom_nodes/; ``pip install -e .`` exposes the same folder as the
package ``spectral_progressive``.  Importing it touches no ComfyUI module: the nodes are built only
when ComfyUI asks for them through ``comfy_entrypoint``.
"""
WEB_DIRECTORY = "./web"
__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]


async def comfy_entrypoint():
    """ComfyUI V3 entry point: returns the pack's ComfyExtension (imported lazily)."""
    from .nodes.extension import comfy_entrypoint as _entry

    return await _entry()
