"""Run the whole `deeplimits run` pipeline in-process on a small configuration.

The same as typing
    deeplimits run --depths 4,8,16 --epochs 5 --replicas 2 --out DIR
in a shell; the full default run is just `deeplimits run`.

Run: python examples/sweep_cli.py   (under a minute on one CPU thread)
"""

import tempfile
from pathlib import Path

from deeplimits.cli import main

with tempfile.TemporaryDirectory() as scratch:
    out = Path(scratch) / "run"
    status = main(
        ["run", "--depths", "4,8,16", "--epochs", "5", "--replicas", "2"]
        + ["--no-progress", "--out", str(out)]
    )
    print("exit status", status)
    print(sorted(path.name for path in out.iterdir()))
