"""The pack's ComfyExtension: the node list ComfyUI registers."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .calibrate_nodes import SpectralCalibrate
from .edit_nodes import FrequencyBandGain, FrequencyEdit
from .expand_nodes import SpectralNoiseExpand
from .forcing_nodes import SpectralForcingPatch
from .model_nodes import SpectralProgressiveModel
from .passthrough_nodes import SpectralPassthroughSweep
from .probe_nodes import PowerSpectrumProbe
from .sampler_nodes import SamplerSpectralProgressive, SpectralProgressiveSampler
from .schedule_nodes import DeltaSchedule
from .scheduler_nodes import SpectralScheduler

NODES: list[type[io.ComfyNode]] = [SamplerSpectralProgressive, SpectralProgressiveModel, SpectralProgressiveSampler,
                                   DeltaSchedule, PowerSpectrumProbe, SpectralNoiseExpand, FrequencyEdit, FrequencyBandGain,
                                   SpectralCalibrate, SpectralPassthroughSweep, SpectralForcingPatch, SpectralScheduler]


class SpectralProgressiveExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from . import routes  # the web preview's server route (a no-op without a running server)

        routes.register()
        return list(NODES)


async def comfy_entrypoint() -> SpectralProgressiveExtension:
    return SpectralProgressiveExtension()
