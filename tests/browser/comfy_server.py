"""A real ComfyUI server (subprocess) and headless Chromium for the browser tests and the example builder.

The server: ``main.py --cpu --listen 127.0.0.1`` on a free port with temporary output/input/temp/user
folders and ``--extra-model-paths-config`` registering the tiny model files, the random-weight
TAESD/TAEF1 VAEs and the integration harness's test nodes (tests/integration/test_nodes); the
pack is loaded from COMFYUI_PATH/custom_nodes/spectral_progressive when that links to this repo,
else from a temporary link named ``spectral_progressive``.  HTTP helpers come from the harness
(tests/integration/server_client.py: ServerClient).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from ..integration.server_client import ServerClient
from ..integration.server_launch import spawn_main, wait_up

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IT_DIR = os.path.join(REPO, "tests", "integration")
TEST_NODES_DIR = os.path.join(IT_DIR, "test_nodes")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    for p in ([env] if env else []) + list(CHROMIUM_CANDIDATES) + [shutil.which("chromium") or ""]:
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def _pack_custom_nodes(comfy_dir: str, root: str) -> str | None:
    """None when ComfyUI's custom_nodes/spectral_progressive is this repo; else an extra custom_nodes
    folder holding a link named like the package."""
    link = os.path.join(comfy_dir, "custom_nodes", "spectral_progressive")
    if os.path.isdir(link) and os.path.realpath(link) == os.path.realpath(REPO):
        return None
    extra = os.path.join(root, "pack_nodes")
    os.makedirs(extra, exist_ok=True)
    target = os.path.join(extra, "spectral_progressive")
    if not os.path.exists(target):
        os.symlink(REPO, target)
    return extra


_ASSETS_CODE = r"""
import importlib.util, sys
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); sys.modules[name] = m; spec.loader.exec_module(m); return m
tm = load("spectral_it_tiny_models", sys.argv[1])
tm.setup_comfy(sys.argv[3])
tm.write_model_files(sys.argv[4])
te = load("spectral_tiny_examples_standalone", sys.argv[2])
te.write_taesd(sys.argv[5])
"""


def write_tiny_assets(comfy_dir: str, models: str) -> None:
    """Tiny model files (harness's tiny_models.write_model_files) and TAESD/TAEF1, in a child
    process (ComfyUI is never imported into the test process)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", _ASSETS_CODE, os.path.join(IT_DIR, "tiny_models.py"),
                        os.path.join(HERE, "tiny_examples.py"), comfy_dir, models, os.path.join(models, "vae_approx")],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"writing the tiny assets failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


class Server(ServerClient):
    """The browser tests' server: the shared client, polling history at 0.2 s."""

    def wait_history(self, prompt_id: str, timeout: float = 300.0, poll: float = 0.2) -> dict:
        return super().wait_history(prompt_id, timeout, poll)


def start_server(comfy_dir: str, root: str, *, tiny: bool = True, timeout: float = 180.0) -> Server:
    """Start ComfyUI (see module doc).  ``tiny``: write and register the tiny assets and the test nodes
    (the example input images are always written)."""
    from .tiny_examples import write_images

    for sub in ("output", "temp", "user", "input"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    models = os.path.join(root, "models")
    custom = []
    write_images(os.path.join(root, "input"), comfy_dir=comfy_dir)  # what the examples' LoadImage nodes name
    if tiny:
        write_tiny_assets(comfy_dir, models)
        custom.append(TEST_NODES_DIR)
    extra = _pack_custom_nodes(comfy_dir, root)
    if extra:
        custom.append(extra)
    yaml_path = os.path.join(root, "extra_model_paths.yaml")
    with open(yaml_path, "w") as f:
        f.write("spectral_browser:\n"
                f"    base_path: {models}\n"
                "    diffusion_models: diffusion_models\n"
                "    vae_approx: vae_approx\n")
        if custom:
            f.write("    custom_nodes: |\n" + "".join(f"        {p}\n" for p in custom))
    proc, base, log_path, log = spawn_main(comfy_dir, root, yaml_path)
    log.close()
    srv = Server(proc, base, root, log_path)
    try:
        wait_up(srv, proc, timeout)
    except (RuntimeError, TimeoutError):
        srv.stop()
        raise
    # skip the first-run template dialog / tutorial
    srv.post("/settings/Comfy.TutorialCompleted", raw=b"true")
    return srv


def launch_browser(playwright, chromium: str):
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)


def open_app(browser, base: str, width: int = 1600, height: int = 1000):
    """A page with the ComfyUI app loaded (window.app ready, default graph shown). Console errors and
    page errors are collected in page.spectral_errors (those raised from the pack's web/js tagged
    with ui.OURS)."""
    from .ui import OURS

    page = browser.new_page(viewport={"width": width, "height": height})
    # tag console.error calls made from the pack's own scripts, so no benign filter can hide them
    page.add_init_script("""(() => { const orig = console.error;
      console.error = function (...args) {
        if (String(new Error().stack).includes('/extensions/spectral_progressive/')) args.unshift(%s);
        return orig.apply(this, args); }; })()""" % json.dumps(OURS))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(
        f"pageerror: {e}" + (f" {OURS}" if "/extensions/spectral_progressive/" in str(getattr(e, "stack", "") or "") else "")))
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"http {r.status}: {r.url}") if r.status >= 400 else None)
    page.spectral_errors = errors
    page.goto(base + "/")
    page.wait_for_function("window.app && window.app.graph && window.app.canvas && "
                           "Object.keys(LiteGraph.registered_node_types).includes('DeltaSchedule')", timeout=120_000)
    page.wait_for_timeout(500)
    return page
