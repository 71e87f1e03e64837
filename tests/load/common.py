"""What the soak and the fuzz share: the server (the integration suite's launcher), resident memory,
health, submitting a prompt over HTTP, the outcome classes, JSON and the printed table."""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from tests.integration.server_launch import ComfyServer, start_server

REPO = os.path.realpath(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TESTS_DIR = os.path.join(REPO, "tests")

# --------------------------------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------------------------------


def comfy_dir_from_env() -> str:
    p = os.environ.get("COMFYUI_PATH")
    if not p or not os.path.isfile(os.path.join(p, "execution.py")):
        sys.exit("COMFYUI_PATH must point at a ComfyUI checkout (e.g. COMFYUI_PATH=/path/to/ComfyUI)")
    return os.path.abspath(p)


def comfy_version(comfy_dir: str) -> str:
    try:
        with open(os.path.join(comfy_dir, "comfyui_version.py")) as f:
            m = re.search(r'__version__\s*=\s*"([^"]+)"', f.read())
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


@contextmanager
def comfy_server(comfy_dir: str, keep: bool = False) -> Iterator[ComfyServer]:
    root = tempfile.mkdtemp(prefix="spectral_load_")
    try:
        with start_server(comfy_dir, root) as srv:
            yield srv
    finally:
        if keep:
            print(f"server folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def health(srv: ComfyServer) -> str | None:
    """None when the server process runs and GET /system_stats answers 200, else why not."""
    if srv.proc.poll() is not None:
        return f"server process exited with {srv.proc.returncode}"
    try:
        code, body = srv.request("GET", "/system_stats")
    except Exception as exc:  # noqa: BLE001 - any connection failure is the answer
        return f"GET /system_stats failed: {type(exc).__name__}: {exc}"
    if code != 200 or not isinstance(body, dict) or "system" not in body:
        return f"GET /system_stats -> {code}"
    return None


def queue_state(srv: ComfyServer) -> dict:
    q = srv.get("/queue")
    return {"running": len(q.get("queue_running", [])), "pending": len(q.get("queue_pending", []))}


# --------------------------------------------------------------------------------------------------
# one prompt over HTTP
# --------------------------------------------------------------------------------------------------


@dataclass
class Submitted:
    http: int  # status of POST /prompt (0: the request itself failed)
    body: Any = None  # its JSON body
    entry: dict | None = None  # the /history entry once finished
    seconds: float = 0.0
    progress: list = field(default_factory=list)  # progress values seen on the websocket (interrupt runs)
    transport_error: str | None = None


def submit(srv: ComfyServer, prompt: dict, timeout: float = 300.0) -> Submitted:
    t0 = time.time()
    try:
        code, body = srv.queue(prompt)
    except Exception as exc:  # noqa: BLE001
        return Submitted(0, transport_error=f"{type(exc).__name__}: {exc}", seconds=time.time() - t0)
    sub = Submitted(code, body)
    if code == 200:
        try:
            sub.entry = srv.wait(body["prompt_id"], timeout)
        except Exception as exc:  # noqa: BLE001 - timeouts and a dead server are outcomes
            sub.transport_error = f"{type(exc).__name__}: {str(exc)[:2000]}"
    sub.seconds = time.time() - t0
    return sub


def submit_and_interrupt(srv: ComfyServer, prompt: dict, at: int, timeout: float = 300.0) -> Submitted:
    """Queue ``prompt`` with the websocket open; POST /interrupt when its progress bar reaches ``at``."""
    import aiohttp

    async def go() -> Submitted:
        t0 = time.time()
        ws_url = srv.base.replace("http://", "ws://") + f"/ws?clientId={srv.client_id}"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url) as ws:
                async with session.post(srv.base + "/prompt",
                                        json={"prompt": prompt, "client_id": srv.client_id}) as resp:
                    body = await resp.json()
                    if resp.status != 200:
                        return Submitted(resp.status, body, seconds=time.time() - t0)
                pid = body["prompt_id"]
                sub = Submitted(200, body)
                sent = False
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    d = json.loads(msg.data)
                    data = d.get("data") or {}
                    if data.get("prompt_id") != pid:
                        continue
                    if d["type"] == "progress":
                        sub.progress.append(data["value"])
                        if data["value"] >= at and not sent:
                            sent = True
                            async with session.post(srv.base + "/interrupt", json={"prompt_id": pid}) as r:
                                await r.read()
                    elif d["type"] in ("execution_interrupted", "execution_error", "execution_success"):
                        break
        sub.entry = srv.wait(pid, timeout)
        sub.seconds = time.time() - t0
        return sub

    try:
        return asyncio.run(asyncio.wait_for(go(), timeout))
    except Exception as exc:  # noqa: BLE001
        return Submitted(0, transport_error=f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------------
# outcomes
# --------------------------------------------------------------------------------------------------

CORRECT, REJECTED, NAMED, INTERRUPTED = "correct", "rejected_by_validation", "named_error", "interrupted"
CORE_ERROR = "core_error"  # ComfyUI's (or torch's) own error, no frame of the pack involved
NONFINITE_IN_OUT = "nonfinite_in_nonfinite_out"  # success on a deliberately non-finite input, output non-finite
FAILURE_PACK_TRACEBACK = "FAILURE_pack_traceback"  # raised in the pack's code without a named message
FAILURE_UNDER_PACK = "FAILURE_error_under_pack"  # raised by ComfyUI/torch below a frame of the pack
FAILURE_OUTPUT = "FAILURE_bad_output"  # success, but the output has the wrong shape or is not finite
FAILURE_SERVER = "FAILURE_server"  # crash, unhealthy afterwards, HTTP 5xx, timeout
FAILURES = (FAILURE_PACK_TRACEBACK, FAILURE_UNDER_PACK, FAILURE_OUTPUT, FAILURE_SERVER)

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_NAMED = re.compile(r"^(?P<names>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*): (?:spectrum: )?expected ")


def is_pack_file(path: str) -> bool:
    rp = os.path.realpath(path)
    return rp.startswith(REPO + os.sep) and not rp.startswith(TESTS_DIR + os.sep)


def frames(tb: list | str | None) -> list[tuple[str, int, str]]:
    text = "".join(tb) if isinstance(tb, list) else (tb or "")
    return [(f, int(n), fn) for f, n, fn in _FRAME.findall(text)]


def named_input(message: str, input_names: set[str]) -> str | None:
    """The input a pack error names ("scales: expected ..." -> "scales"), if it is a known input."""
    m = _NAMED.match(message or "")
    if not m:
        return None
    names = m.group("names").split("/")
    return m.group("names") if all(n in input_names for n in names) else None


def short_frame(f: tuple[str, int, str]) -> str:
    path, line, fn = f
    rp = os.path.realpath(path)
    rel = os.path.relpath(rp, REPO) if rp.startswith(REPO + os.sep) else "/".join(rp.split(os.sep)[-2:])
    return f"{rel}:{line} in {fn}"


@dataclass
class Outcome:
    cls: str
    detail: str = ""
    node_type: str | None = None
    exception_type: str | None = None
    named: str | None = None  # the input named by the error / validation
    where: str | None = None  # innermost frame of an execution error
    pack_frame: str | None = None  # innermost frame of the pack in the traceback

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def execution_error(entry: dict) -> dict | None:
    for ev, data in entry.get("status", {}).get("messages", []):
        if ev == "execution_error":
            return data
    return None


def classify(sub: Submitted, input_names: set[str], checks: list | None = None,
             nonfinite_input: bool = False) -> Outcome:
    """One outcome class for a submitted prompt.

    checks: [(report node id, expected latent shape or None)]: a success is correct when every report
    shows that shape and finite values.  nonfinite_input: the prompt feeds NaN/inf on purpose, so a
    non-finite output is that input passed through (NONFINITE_IN_OUT), not a bad output."""
    if sub.transport_error and sub.http in (0, 200):
        return Outcome(FAILURE_SERVER, sub.transport_error[:500])
    if sub.http == 400:
        body = sub.body if isinstance(sub.body, dict) else {}
        names, types = [], []
        for ne in (body.get("node_errors") or {}).values():
            for e in ne.get("errors", []):
                types.append(f"{ne.get('class_type')}.{(e.get('extra_info') or {}).get('input_name', '?')}:{e.get('type')}")
                names.append((e.get("extra_info") or {}).get("input_name", "?"))
        err = body.get("error") or {}
        detail = "; ".join(sorted(types)) if types else f"{err.get('type')}: {err.get('message')} {err.get('details', '')}"
        return Outcome(REJECTED, detail[:500], named=",".join(sorted(set(names))) or None)
    if sub.http != 200:
        return Outcome(FAILURE_SERVER, f"POST /prompt -> {sub.http}: {str(sub.body)[:500]}")
    entry = sub.entry or {}
    status = entry.get("status", {})
    msgs = status.get("messages", [])
    if any(ev == "execution_interrupted" for ev, _ in msgs):
        return Outcome(INTERRUPTED, f"progress seen {sub.progress[-3:]}" if sub.progress else "")
    err = execution_error(entry)
    if err is not None:
        fr = frames(err.get("traceback"))
        pack = [f for f in fr if is_pack_file(f[0])]
        message = str(err.get("exception_message", ""))
        out = Outcome("", message.strip()[:600], err.get("node_type"), err.get("exception_type"),
                      where=short_frame(fr[-1]) if fr else None, pack_frame=short_frame(pack[-1]) if pack else None)
        if fr and is_pack_file(fr[-1][0]):
            out.named = named_input(message, input_names)
            out.cls = NAMED if out.named else FAILURE_PACK_TRACEBACK
        elif pack:
            out.cls = FAILURE_UNDER_PACK
        else:
            out.cls = CORE_ERROR
        return out
    if status.get("status_str") != "success":
        return Outcome(FAILURE_SERVER, f"status {json.dumps(status)[:500]}")
    problems = []
    nonfinite = False
    for report_id, shape in checks or []:
        rep = (entry.get("outputs", {}).get(report_id) or {}).get("latent")
        if not rep:
            problems.append(f"report {report_id} missing")
            continue
        info = rep[0]
        if shape is not None and list(info["shape"]) != list(shape):
            problems.append(f"shape {info['shape']} != expected {list(shape)}")
        if not info.get("finite", False):
            nonfinite = True
    if problems:
        return Outcome(FAILURE_OUTPUT, "; ".join(problems))
    if nonfinite:
        return Outcome(NONFINITE_IN_OUT if nonfinite_input else FAILURE_OUTPUT, "output not finite")
    return Outcome(CORRECT)


# --------------------------------------------------------------------------------------------------
# numbers, JSON, tables
# --------------------------------------------------------------------------------------------------


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else float("nan")


def write_json(out_dir: str, name: str, data: dict) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        json.dump(_strict(data), f, indent=1, allow_nan=False, default=str)
        f.write("\n")
    return path


def _strict(v):
    """Strict JSON: non-finite floats as strings ("nan", "inf")."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _strict(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_strict(x) for x in v]
    return v


def table(rows: list[list], headers: list[str]) -> str:
    cells = [[str(c) for c in r] for r in [headers] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]])


def pack_input_names(object_info: dict) -> set[str]:
    """Every input name of the pack's nodes (and what several inputs are called together)."""
    names = {"positive/negative"}
    for info in pack_nodes(object_info).values():
        for group in ("required", "optional"):
            names.update((info.get("input", {}).get(group) or {}).keys())
    return names


PACK_CATEGORY = "sampling/spectral"


def pack_nodes(object_info: dict) -> dict:
    """The pack's entries of GET /object_info (its nodes live in one category)."""
    return {k: v for k, v in object_info.items() if str(v.get("category", "")).startswith(PACK_CATEGORY)}
