"""Integration fixtures: a real ComfyUI found through COMFYUI_PATH, in-process and over HTTP.

Nothing here imports ComfyUI at import time: each test module skips itself (harness.require_comfyui)
when COMFYUI_PATH is unset, and the fixtures below only run for collected tests.

* ``comfy`` (session): ComfyUI on sys.path in CPU mode, its built-in and comfy_extras nodes, the pack
  loaded exactly as ComfyUI loads it (nodes.load_custom_node on COMFYUI_PATH/custom_nodes/
  spectral_progressive, or on a temporary link to this repo when that link does not exist), the
  test-only nodes (test_nodes/spectral_it_nodes), tiny model files registered as diffusion_models,
  temporary output/input/temp folders, latent previews on (Latent2RGB), --disable-metadata (so
  prompts holding in-process tensors, {"__value__": ...}, are never json-dumped into PNGs) and a
  progress hook like the server's (main.hijack_progress).  ``comfy.run(prompt)`` validates and
  executes an API-format prompt with a fresh execution.PromptExecutor and returns a RunResult.
* ``server`` (session): server_launch.start_server (shared with the load runs in tests/load):
  ``main.py --cpu --listen 127.0.0.1`` in a subprocess with
  --extra-model-paths-config (tiny model files, the test nodes and, when COMFYUI_PATH/custom_nodes
  has no link to this repo, a temporary one), temporary output/input/temp/user folders,
  an in-memory database, latent2rgb previews, OMP_NUM_THREADS=1.

Both write the tiny model files (tiny_models.write_model_files) into their own temporary folders;
nothing is written into the ComfyUI checkout.
"""
from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from . import harness
from .server_launch import pack_dir as _pack_dir
from .server_launch import start_server

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TEST_NODES_DIR = os.path.join(HERE, "test_nodes")
TEST_NODE_PKG = os.path.join(TEST_NODES_DIR, "spectral_it_nodes")


@dataclass
class RunResult:
    prompt_id: str
    ok: bool
    outputs: dict = field(default_factory=dict)  # node id -> list of output values
    ui: dict = field(default_factory=dict)  # node id -> ui dict
    messages: list = field(default_factory=list)  # executor status messages + server events
    node_errors: dict = field(default_factory=dict)  # validation errors
    validation_error: Any = None
    progress: list = field(default_factory=list)  # (value, total, preview) per progress-bar update

    def out(self, ref, index: int | None = None):
        idx = ref.index if index is None else index
        return self.outputs[ref.id][idx][0]

    @property
    def error(self) -> dict | None:
        for ev, data in self.messages:
            if ev == "execution_error":
                return data
        return None

    @property
    def interrupted(self) -> bool:
        return any(ev == "execution_interrupted" for ev, _ in self.messages)


class _Recorder:
    """The PromptServer interface the executor reports to (send_sync / queue_updated): records."""

    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}
        self.messages: list = []

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))

    def queue_updated(self):
        pass


class ComfyInProcess:
    def __init__(self, comfy_dir: str, root: str):
        self.comfy_dir = comfy_dir
        self.root = root
        self.models_dir = os.path.join(root, "models")
        self.progress: list | None = None
        self.interrupt_at: int | None = None  # interrupt when the progress bar reaches this value
        self.tiny = None
        self.pack_path = None
        self.extra_custom_nodes = None

    def setup(self) -> None:
        self.tiny = _load_tiny_standalone()
        self.tiny.setup_comfy(self.comfy_dir, threads=1)
        import comfy.utils
        import folder_paths
        import nodes
        from comfy.cli_args import LatentPreviewMethod, args
        args.preview_method = LatentPreviewMethod.Latent2RGB  # previews in the sampling callback
        args.disable_metadata = True  # --disable-metadata: prompts holding in-process tensors are not json-dumped
        for sub in ("output", "input", "temp"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        folder_paths.set_output_directory(os.path.join(self.root, "output"))
        folder_paths.set_input_directory(os.path.join(self.root, "input"))
        folder_paths.set_temp_directory(os.path.join(self.root, "temp"))
        self.tiny.write_model_files(self.models_dir)
        folder_paths.add_model_folder_path("diffusion_models", os.path.join(self.models_dir, "diffusion_models"),
                                           is_default=True)
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
        self.pack_path, self.extra_custom_nodes = _pack_dir(self.comfy_dir, self.root)
        assert asyncio.run(nodes.load_custom_node(self.pack_path)), f"ComfyUI failed to load the pack from {self.pack_path}"
        assert asyncio.run(nodes.load_custom_node(TEST_NODE_PKG)), "ComfyUI failed to load the test nodes"
        missing = [n for n in harness.PACK_NODES if n not in nodes.NODE_CLASS_MAPPINGS]
        assert not missing, f"pack nodes not registered: {missing}"
        comfy.utils.set_progress_bar_global_hook(self._hook)

    def _hook(self, value, total, preview, prompt_id=None, node_id=None):
        """Like main.hijack_progress: honour interrupts, then record the update."""
        import comfy.model_management
        if self.interrupt_at is not None and value >= self.interrupt_at:
            self.interrupt_at = None
            comfy.model_management.interrupt_current_processing(True)
        comfy.model_management.throw_exception_if_processing_interrupted()
        if self.progress is not None:
            self.progress.append((value, total, preview))

    @property
    def test_nodes(self):
        return sys.modules[TEST_NODE_PKG.replace(".", "_x_")]

    def run(self, prompt: dict, interrupt_at: int | None = None) -> RunResult:
        """Validate and execute ``prompt`` with a fresh execution.PromptExecutor (no cache between runs)."""
        import execution
        pid = str(uuid.uuid4())
        res = RunResult(pid, False)
        ok, err, to_execute, node_errors = asyncio.run(execution.validate_prompt(pid, prompt, None))
        if not ok:
            res.validation_error, res.node_errors = err, node_errors
            return res
        server = _Recorder()
        ex = self.tiny.new_executor(server)
        self.progress = res.progress
        self.interrupt_at = interrupt_at
        try:
            # the per-prompt preview override is how ComfyUI 0.33 picks the preview method (it resets
            # args.preview_method to the start-up default for every prompt); older versions ignore it
            ex.execute(prompt, pid, {"preview_method": "latent2rgb"}, to_execute)
        finally:
            self.progress = None
            self.interrupt_at = None
        res.ok = bool(ex.success)
        res.messages = list(ex.status_messages) + [m for m in server.messages if m[0] != "progress_state"]
        for nid in prompt:
            out = self.tiny.cached_outputs(ex, nid)
            if out is not None:
                res.outputs[nid] = out
        res.ui = dict((getattr(ex, "history_result", None) or {}).get("outputs", {}))
        return res

    def calls(self, key: str) -> list:
        return self.test_nodes.CALL_LOG.pop(key, [])


@pytest.fixture(scope="session")
def comfy(tmp_path_factory) -> ComfyInProcess:
    comfy_dir = harness.require_comfyui()
    env = ComfyInProcess(comfy_dir, str(tmp_path_factory.mktemp("comfy_inprocess")))
    env.setup()
    return env


# ------------------------------------------------------------------------------------------------
# HTTP: a real server
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    comfy_dir = harness.require_comfyui()
    with start_server(comfy_dir, str(tmp_path_factory.mktemp("comfy_server"))) as srv:
        yield srv


def _load_tiny_standalone():
    import importlib.util
    spec = importlib.util.spec_from_file_location("spectral_it_tiny_models", os.path.join(HERE, "tiny_models.py"))
    mod = sys.modules.get("spectral_it_tiny_models")
    if mod is None:
        mod = importlib.util.module_from_spec(spec)
        sys.modules["spectral_it_tiny_models"] = mod
        spec.loader.exec_module(mod)
    return mod
