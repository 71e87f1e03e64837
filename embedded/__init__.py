"""The embedded default model: a small flow-matching UNet trained on natural-image statistics.

- ``dead_leaves``: the exact, unlimited dead-leaves generator (64x64 RGB, ~w^-2 spectrum, colours of
  scikit-image's photographs; held-out sets are other seeds), the default training data
- ``data``: seeded 64x64 RGB crops of scikit-image's sample photographs (training / held-out split)
- ``model``: ``EmbeddedDenoiser`` (k-diffusion denoiser, CONST frame) and ``load_default_model``
- ``train``: the time-budgeted trainer (``python -m spectral_progressive.embedded.train``), every stage
  resolution (64, DCT-contracted 32 and 16) from the start, resolution-shifted flow times
- ``measure_spectrum`` / ``sample_grid``: the shipped spectrum.json and samples_grid.png
"""
