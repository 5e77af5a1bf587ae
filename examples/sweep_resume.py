"""Run a depth sweep into a folder, resume it, read it back and write a report.

Run: python examples/sweep_resume.py   (about 20 s on one CPU thread)
"""

import tempfile
from pathlib import Path

import torch

from deeplimits.report import write_training_section
from deeplimits.sweep import RunConfigError, depth_sweep, geometric_depths, load_sweep

torch.set_num_threads(1)
settings = {"replicas": 2, "epochs": 10, "lr": 1e-2, "progress": False}

with tempfile.TemporaryDirectory() as scratch:
    out = Path(scratch) / "run"
    depths = geometric_depths(4, 64, 2)  # [4, 8, 16, 32, 64]

    # A first call trains the three shallowest depths, as if it were stopped.
    depth_sweep(depths[:3], out=out, **settings)
    # The second call loads those three and trains only 32 and 64.
    sweep = depth_sweep(depths, out=out, **settings)
    for depth in sweep.depths:
        record = sweep.metrics[depth]
        print(
            f"L = {depth:3d}: final train loss {record['final_train_loss']}, "
            f"{record['epochs_run']} epochs, stopped by {record['stop_reason']}"
        )

    # Other settings on the same folder are rejected, and nothing changes.
    try:
        depth_sweep(depths, out=out, **{**settings, "lr": 1e-3})
    except RunConfigError as error:
        print("rejected:", error)

    loaded = load_sweep(out)
    print("finished depths on disk:", loaded.depths)
    print("network at L = 64:", loaded.networks[64])
    write_training_section(out)
    print((out / "report.md").read_text()[:600])
