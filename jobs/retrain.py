"""Retrain a managed model on a data window, warm-started from its champion.

::

    python -m jobs.retrain --config examples/autopilot.yaml --trigger drift \
        --parent-version 3 --data window.parquet --data-window "rows 5000-9000"

Without ``--data`` the config's own data source is used. The new version is a
``draft`` whose lineage records the trigger, the parent version, the window and
the data fingerprint; the controller validates it before any traffic. Exits 2
with a message naming the problem on a bad config or data, 1 if training fails.
"""

from __future__ import annotations

import argparse
import sys

from jobs._training_cli import print_outcome, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m jobs.retrain", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="YAML config of the managed model")
    p.add_argument("--trigger", default="manual", help="why: drift, performance, schedule, ...")
    p.add_argument("--parent-version", default=None, help="the champion this would replace")
    p.add_argument("--data", default=None, help="CSV or Parquet file with the training window")
    p.add_argument("--data-window", default="", help='label of the window, e.g. "rows 5000-9000"')
    p.add_argument("--name", default=None, help="registered model name (default: the config's)")
    p.add_argument(
        "--no-warm-start", action="store_true", help="do not seed the search with the champion"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        from pydantic import ValidationError

        from autopilot.config import DataConfig, load_config
        from autopilot.errors import ConfigError
        from autopilot.registry import open_registry
        from autopilot.training.automl import ensure_ray
        from autopilot.training.data import load_frame
        from autopilot.training.pipeline import champion_config, train_and_register

        cfg = load_config(args.config)
        if args.name:
            try:
                cfg = type(cfg).model_validate({**cfg.model_dump(), "name": args.name})
            except ValidationError as exc:
                raise ConfigError(f"--name {args.name!r}: {exc.errors()[0]['msg']}") from None
        data_cfg = cfg.data
        if args.data:
            raw = cfg.data.model_dump(exclude={"path", "generator"})
            try:
                data_cfg = DataConfig.model_validate({**raw, "path": args.data})
            except ValidationError as exc:
                raise ConfigError(f"--data {args.data!r}: {exc.errors()[0]['msg']}") from None
        frame = load_frame(data_cfg)
        registry = open_registry(cfg)
        warm = None if args.no_warm_start else champion_config(registry, cfg.name)
        parent = args.parent_version
        if parent is None:
            champion = registry.alias(cfg.name, "champion")
            parent = champion.version if champion is not None else None
        ensure_ray()
        outcome = train_and_register(
            cfg,
            frame,
            registry,
            trigger=args.trigger,
            parent_version=parent,
            data_window=args.data_window or (f"file {args.data}" if args.data else "config data"),
            warm_start=warm,
        )
        if warm:
            print(f"Warm start: champion configuration {warm['family']} evaluated first")
        print_outcome(outcome)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
