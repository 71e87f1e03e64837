"""Load runs against ONE real ComfyUI server over its HTTP API (issue 10 item 4, "Load held").

Benchmarks, not tests: nothing here asserts on wall time.  Both scripts start the server with the
integration suite's launcher (tests/integration/server_launch.start_server) and build prompts with
its harness (tests/integration/harness.py):

    COMFYUI_PATH=/path/to/ComfyUI python -m tests.load.soak --out bench/results
    COMFYUI_PATH=/path/to/ComfyUI python -m tests.load.fuzz --out bench/results

soak: 100 prompts in a row (families, both formulations and the all-in-one, bad inputs, interrupts),
the server's resident memory after each.  fuzz: 200 seeded random prompts at and beyond the nodes'
bounds, each outcome classified (see common.classify).
"""
