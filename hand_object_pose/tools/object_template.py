"""Make a DMA object template: resample a CAD mesh to exactly 1000 vertices and store it with its symmetry.

    python -m hand_object_pose.tools.object_template MESH OUT.npz --id 006_mustard_bottle \
        [--scale 0.001] [--vertices 1000] [--symmetry none|discrete|continuous|spherical --axis 0 0 1 --order 2 [--flip-axis 1 0 0]]

The input mesh (Wavefront .obj, or .ply / .stl / .vtk through pyvista) is scaled to metres, uniformly
subdivided so that it has many more vertices than requested, clustered into N Voronoi regions of equal
area (ACVD, as Dense Mutual Attention's paper, section 3.2), and re-meshed with one vertex per region.
The file format and the resampling live in `geometry.object_template`; this is their command line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hand_object_pose.geometry.object_template import (SYMMETRY_TYPES, ObjectTemplate, read_mesh, resample_mesh,
                                                       save_template, symmetry_description)


def make_template(mesh_path: str | Path, object_id: str, scale: float = 1.0, num_vertices: int = 1000,
                  symmetry: dict | None = None) -> ObjectTemplate:
    vertices, faces = read_mesh(mesh_path)
    resampled, new_faces = resample_mesh(vertices * scale, faces, num_vertices)
    return ObjectTemplate(object_id, resampled, new_faces, symmetry or {"kind": "none"})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.object_template",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("mesh", help="input mesh (.obj, or .ply/.stl/.vtk via pyvista)")
    parser.add_argument("out", help="output .npz")
    parser.add_argument("--id", required=True, help="object id in the catalogue, e.g. 006_mustard_bottle")
    parser.add_argument("--scale", type=float, default=1.0, help="factor to metres (0.001 for a mesh in mm)")
    parser.add_argument("--vertices", type=int, default=1000, help="vertex count (DMA: 1000)")
    parser.add_argument("--symmetry", choices=SYMMETRY_TYPES, default="none")
    parser.add_argument("--axis", type=float, nargs=3, default=None, help="symmetry axis in the object frame")
    parser.add_argument("--order", type=int, default=None, help="order of a discrete symmetry")
    parser.add_argument("--flip-axis", type=float, nargs=3, default=None,
                        help="an axis perpendicular to --axis about which a 180-degree turn also leaves the object "
                             "unchanged (a box, a closed cylinder)")
    args = parser.parse_args(argv)
    try:
        symmetry = symmetry_description(args.symmetry, args.axis, args.order, args.flip_axis)
        template = make_template(args.mesh, args.id, args.scale, args.vertices, symmetry)
    except (OSError, ValueError) as exc:
        print(f"object_template: {exc}", file=sys.stderr)
        return 2
    save_template(args.out, template, source=str(args.mesh), scale=args.scale)
    extent = template.vertices.max(0) - template.vertices.min(0)
    print(f"{args.out}: {len(template.vertices)} vertices, {len(template.faces)} faces, "
          f"extent {np.round(extent, 4).tolist()} m, symmetry {symmetry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
