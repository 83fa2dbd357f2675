"""Prove that our model computes the same function as the official code, on a parity kit.

    python -m hand_object_pose.tools.parity CONFIG KIT_DIR [--listings DIR]

Regenerates the official-format weights from KIT_DIR's spec, converts them with our checkpoint
converter, runs our model on the kit's input, compares every output and intermediate the kit
provides, prints max absolute / relative error per array and exits 1 beyond tolerance
(2 on a usage or kit error).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from hand_object_pose.export.parity_kit import ParityReport, load_kit

# Config-name prefix -> module exposing `run_parity(kit) -> ParityReport`.
FAMILY_RUNNERS = {
    "kypt_": "hand_object_pose.export.parity_kpt",
    "a2j_": "hand_object_pose.export.parity_a2j",
    "dma_": "hand_object_pose.export.parity_dma",
}


def runner_for(config: str):
    for prefix, module_name in FAMILY_RUNNERS.items():
        if config.startswith(prefix):
            return importlib.import_module(module_name).run_parity
    raise KeyError(f"no parity runner for config {config!r}; known prefixes: {sorted(FAMILY_RUNNERS)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="kit configuration, e.g. kypt_ho3d_3d, a2j_ih26m, dma_ho3d")
    parser.add_argument("kit_dir", help="folder with parity_spec.json, CONFIG.npz, CONFIG.json")
    parser.add_argument("--listings", default=None,
                        help="folder of official key listings (default: the spec's listing_dir next to the kit, "
                             "else ../shared/reference/official_state_dicts)")
    args = parser.parse_args(argv)
    try:
        run = runner_for(args.config)
        kit = load_kit(args.config, args.kit_dir, args.listings)
    except (KeyError, FileNotFoundError, ValueError) as exc:
        print(f"parity: {exc}", file=sys.stderr)
        return 2
    report: ParityReport = run(kit)
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
