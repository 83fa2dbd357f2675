"""One-time converter: official MANO `.pkl` -> plain `.npz` (no chumpy, no scipy, no arbitrary pickle).

    python -m hand_object_pose.tools.convert_mano MANO_RIGHT.pkl MANO_RIGHT.npz
    python -m hand_object_pose.tools.convert_mano path/to/mano/models/ out_dir/   # both hands

The reading and conversion (restricted unpickler, left-hand shapedirs fix) are in
`geometry.mano_pickle`. MANO is under the MANO licence (non-commercial): never commit the outputs.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys

from hand_object_pose.geometry.mano_pickle import convert, convert_directory


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hand_object_pose.tools.convert_mano",
        description="Convert official MANO .pkl files to plain .npz (restricted unpickler; needs neither "
                    "chumpy nor scipy). Given a directory, converts MANO_RIGHT.pkl and MANO_LEFT.pkl.")
    parser.add_argument("source", help="MANO_{RIGHT,LEFT}.pkl, or the directory holding both")
    parser.add_argument("target", help="output .npz (or output directory when source is a directory)")
    parser.add_argument("--side", choices=("right", "left"), help="hand side when the file name does not say")
    args = parser.parse_args(argv)
    try:
        if os.path.isdir(args.source):
            written = convert_directory(args.source, args.target)
        else:
            convert(args.source, args.target, side=args.side)
            written = [args.target]
    except (ValueError, OSError, pickle.UnpicklingError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
