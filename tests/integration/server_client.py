"""The HTTP client of a ComfyUI server subprocess, shared by the integration tests (conftest's
``server`` fixture) and the browser tests (tests/browser/comfy_server.py)."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request


class ServerClient:
    def __init__(self, proc, base: str, root: str, log_path: str):
        self.proc, self.base, self.root, self.log_path = proc, base, root, log_path

    def log_tail(self, n: int = 4000) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()[-n:]

    def request(self, method: str, path: str, body=None, raw: bytes | None = None) -> tuple[int, object]:
        """(status, JSON body or text); HTTP errors are returned, connection errors raise."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                payload, code = r.read(), r.status
        except urllib.error.HTTPError as e:
            payload, code = e.read(), e.code
        try:
            return code, json.loads(payload) if payload else None
        except ValueError:
            return code, payload.decode(errors="replace")

    def get(self, path: str):
        code, body = self.request("GET", path)
        if code != 200:
            raise RuntimeError(f"GET {path} -> {code}: {body}")
        return body

    def post(self, path: str, body=None, raw: bytes | None = None):
        return self.request("POST", path, body, raw)

    def wait_history(self, prompt_id: str, timeout: float = 300.0, poll: float = 0.1) -> dict:
        """The /history entry once the prompt has finished (success, error or interrupt)."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            h = self.get("/history/" + prompt_id)
            if prompt_id in h and h[prompt_id].get("status", {}).get("completed") is not None:
                return h[prompt_id]
            if self.proc.poll() is not None:
                raise RuntimeError("the ComfyUI server died:\n" + self.log_tail())
            time.sleep(poll)
        raise TimeoutError(f"prompt {prompt_id} did not finish; server log:\n" + self.log_tail())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
