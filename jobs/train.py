"""Initial training of a managed model: AutoML on Ray Tune, then registration.

Run locally (starts a private Ray instance)::

    python -m jobs.train --config examples/autopilot.yaml [--promote]

or on a running cluster (``RAY_ADDRESS`` is set for the job, so it joins the cluster)::

    ray job submit --working-dir . -- python -m jobs.train --config examples/autopilot.yaml

Prints the leaderboard and the registered version. Exits 2 with a message
naming the problem on a bad config or bad data, 1 if training fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from jobs._training_cli import print_outcome, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m jobs.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="YAML config of the managed model")
    p.add_argument(
        "--promote",
        action="store_true",
        help="make the new version the champion (a first deployment has no gate to pass)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        from autopilot.config import load_config
        from autopilot.registry import open_registry
        from autopilot.training.automl import ensure_ray
        from autopilot.training.data import load_frame
        from autopilot.training.pipeline import train_and_register

        cfg = load_config(args.config)
        frame = load_frame(cfg.data)
        registry = open_registry(cfg)
        ensure_ray()
        outcome = train_and_register(
            cfg, frame, registry, trigger="initial", data_window=f"rows 0:{len(frame)}"
        )
        if args.promote:
            promoted = registry.promote(cfg.name, outcome.version.version)
            outcome = dataclasses.replace(outcome, version=promoted)
        print_outcome(outcome, promoted=args.promote)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
