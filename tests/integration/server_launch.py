"""Starts a real ComfyUI server (``main.py --cpu`` on 127.0.0.1) for the HTTP tests and the load runs.

One launcher for everyone: the integration conftest's ``server`` fixture and the load scripts
(tests/load) both call ``start_server``.  It imports neither pytest nor ComfyUI:

* the tiny model files are written by a child process with ComfyUI's own classes
  (tiny_models.write_model_files) into ``root/models``;
* ``--extra-model-paths-config`` points ComfyUI at them, at the test nodes (test_nodes/) and, when
  COMFYUI_PATH/custom_nodes has no link to this repo, at a temporary link to it (``pack_dir``);
* temporary output/input/temp/user folders under ``root``, an in-memory database, latent2rgb
  previews, OMP_NUM_THREADS=1.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

from .server_client import ServerClient

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TEST_NODES_DIR = os.path.join(HERE, "test_nodes")


def pack_dir(comfy_dir: str, tmp_root: str) -> tuple[str, str | None]:
    """(path ComfyUI loads the pack from, extra custom_nodes dir for the server or None)."""
    link = os.path.join(comfy_dir, "custom_nodes", "spectral_progressive")
    if os.path.isdir(link) and os.path.realpath(link) == os.path.realpath(REPO):
        return link, None
    # no link (or a link to another copy): load this repo through a folder named like the package
    extra = os.path.join(tmp_root, "pack_nodes")
    os.makedirs(extra, exist_ok=True)
    target = os.path.join(extra, "spectral_progressive")
    if not os.path.exists(target):
        os.symlink(REPO, target)
    return target, extra


class ComfyServer(ServerClient):
    def __init__(self, proc, base: str, root: str, log_path: str):
        super().__init__(proc, base, root, log_path)
        self.client_id = "spectral-it-" + uuid.uuid4().hex[:8]

    def queue(self, prompt: dict) -> tuple[int, Any]:
        return self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        return self.wait_history(prompt_id, timeout)

    def run(self, prompt: dict) -> dict:
        code, body = self.queue(prompt)
        assert code == 200, f"POST /prompt -> {code}: {body}"
        return self.wait(body["prompt_id"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_model_files_subprocess(comfy_dir: str, models: str) -> None:
    """Write the tiny model files with ComfyUI's classes in a child process (the caller may not
    have ComfyUI set up, e.g. when only HTTP tests run)."""
    code = ("import sys, importlib.util; spec = importlib.util.spec_from_file_location('t', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "m.setup_comfy(sys.argv[2]); m.write_model_files(sys.argv[3])")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code, os.path.join(HERE, "tiny_models.py"), comfy_dir, models],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"writing tiny model files failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def spawn_main(comfy_dir: str, root: str, yaml_path: str):
    """``main.py --cpu`` on a free loopback port with every folder under ``root`` and the model paths of
    ``yaml_path``; its output goes to root/server.log.  Returns (process, base URL, log path, log file)."""
    port = free_port()
    cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--extra-model-paths-config", yaml_path, "--output-directory", os.path.join(root, "output"),
           "--temp-directory", os.path.join(root, "temp"), "--input-directory", os.path.join(root, "input"),
           "--user-directory", os.path.join(root, "user"), "--database-url", "sqlite:///:memory:",
           "--disable-api-nodes", "--preview-method", "latent2rgb"]
    log_path = os.path.join(root, "server.log")
    log = open(log_path, "w")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=comfy_dir, stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}", log_path, log


def wait_up(client: ServerClient, proc, timeout: float) -> None:
    """Until GET /system_stats answers; raises with the log's tail if the server exits or times out."""
    t0 = time.time()
    while True:
        if proc.poll() is not None:
            raise RuntimeError("ComfyUI exited at startup:\n" + client.log_tail())
        try:
            client.get("/system_stats")
            return
        except (urllib.error.URLError, ConnectionError, OSError, RuntimeError):
            if time.time() - t0 > timeout:
                raise TimeoutError("ComfyUI did not come up:\n" + client.log_tail())
            time.sleep(0.3)


@contextmanager
def start_server(comfy_dir: str, root: str, startup_timeout: float = 180.0) -> Iterator[ComfyServer]:
    """A ComfyUI server from ``comfy_dir`` with all its state under ``root``; stopped on exit."""
    models = os.path.join(root, "models")
    write_model_files_subprocess(comfy_dir, models)
    _, extra_pack = pack_dir(comfy_dir, root)
    custom = [TEST_NODES_DIR] + ([extra_pack] if extra_pack else [])
    for sub in ("output", "temp", "user", "input"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    yaml_path = os.path.join(root, "extra_model_paths.yaml")
    with open(yaml_path, "w") as f:
        f.write("spectral_it:\n"
                f"    base_path: {models}\n"
                "    diffusion_models: diffusion_models\n"
                "    custom_nodes: |\n" + "".join(f"        {p}\n" for p in custom))
    proc, base, log_path, log = spawn_main(comfy_dir, root, yaml_path)
    srv = ComfyServer(proc, base, root, log_path)
    try:
        wait_up(srv, proc, startup_timeout)
        info = srv.get("/object_info/SamplerSpectralProgressive")
        if "SamplerSpectralProgressive" not in info:
            raise RuntimeError("the server did not register the pack:\n" + srv.log_tail())
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
