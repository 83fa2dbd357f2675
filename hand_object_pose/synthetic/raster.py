"""A small vectorised z-buffer rasteriser in torch: silhouettes, depth and Lambert-shaded colour.

No OpenGL needed, so it runs in tests and CI anywhere (the synthetic-data renderer may use a GL backend
where one exists). Conventions: vertices in the OpenCV optical camera frame (x right, y down, z forward,
metres); pinhole intrinsics K (3x3, pixels); pixel (u, v) = column u, row v, sampled at its centre, which
K maps to integer coordinates (OpenCV's convention). Depth is the z coordinate (metres) of the visible
surface, 0 where nothing is drawn. Triangles with a vertex closer than ``near`` are dropped (no clipping).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch

# Candidate (triangle, pixel) pairs processed at once; bounds memory for large triangles.
_PAIR_CHUNK = 1 << 22
# Barycentric slack of the inside test: float rounding must not open cracks along shared edges
# (a pixel centre on an edge may then be claimed by both triangles; the z-buffer picks one).
_INSIDE_EPS = 1e-5


class Fragments(NamedTuple):
    """Per-pixel result of rasterisation. H x W images."""
    face_index: torch.Tensor   # (H, W) int64, visible triangle id, -1 for background
    barycentric: torch.Tensor  # (H, W, 3) float, perspective-correct barycentrics of that triangle
    depth: torch.Tensor        # (H, W) float, metres along the optical axis, 0 for background


class RenderOutput(NamedTuple):
    mask: torch.Tensor         # (H, W) bool, silhouette
    depth: torch.Tensor        # (H, W) float, metres, 0 for background
    face_index: torch.Tensor   # (H, W) int64, -1 for background
    rgb: torch.Tensor          # (H, W, 3) float in [0, 1]
    attributes: Optional[torch.Tensor] = None  # (H, W, A) per-vertex attributes interpolated, 0 for background


def _as_tensor(x, dtype, device=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device if device is not None else x.device)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


def _check_inputs(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, image_size) -> tuple[int, int]:
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {tuple(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
    if faces.numel() and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        raise ValueError(f"faces index vertices outside 0..{vertices.shape[0] - 1}")
    if K.shape != (3, 3):
        raise ValueError(f"K must be 3x3, got {tuple(K.shape)}")
    height, width = (int(s) for s in image_size)
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be positive (height, width), got {image_size}")
    return height, width


def _triangle_table(tri_xy: torch.Tensor, tri_z: torch.Tensor) -> torch.Tensor:
    """(F, 12) per-triangle coefficients: screen barycentric k = a_k u + b_k v + c_k (9), then 1/z (3).

    One gather of this table per candidate pixel is all the per-pixel work needs.
    """
    x, y = tri_xy[..., 0], tri_xy[..., 1]
    # Edge opposite vertex k runs from vertex k+1 to k+2; its edge function is the unnormalised barycentric.
    x1, y1 = x.roll(-1, dims=1), y.roll(-1, dims=1)
    x2, y2 = x.roll(-2, dims=1), y.roll(-2, dims=1)
    a, b = y1 - y2, x2 - x1
    c = x1 * y2 - x2 * y1
    area = (a[:, :1] * x[:, :1] + b[:, :1] * y[:, :1] + c[:, :1])
    area = torch.where(area.abs() > 1e-12, area, torch.ones_like(area))
    coef = torch.stack([a, b, c], dim=2) / area[..., None]  # (F, 3, 3)
    return torch.cat([coef.reshape(-1, 9), 1.0 / tri_z], dim=1)


def _barycentric(table_rows: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
    """Screen barycentrics (N, 3) and interpolated 1/z (N,) of pixels (px, py) in the gathered triangles."""
    screen = table_rows[:, 0:9:3] * px[:, None] + table_rows[:, 1:9:3] * py[:, None] + table_rows[:, 2:9:3]
    return screen, (screen * table_rows[:, 9:12]).sum(dim=1)


def rasterize(vertices, faces, K, image_size, near: float = 1e-3) -> Fragments:
    """Z-buffer rasterisation of one triangle mesh.

    vertices: (V, 3) camera-frame points (m); faces: (F, 3) vertex ids; K: (3, 3); image_size: (H, W).
    Both triangle windings are drawn (meshes with holes stay solid from inside).
    """
    vertices = _as_tensor(vertices, torch.float32)
    device = vertices.device
    faces = _as_tensor(faces, torch.int64, device)
    K = _as_tensor(K, torch.float32, device)
    height, width = _check_inputs(vertices, faces, K, image_size)

    z = vertices[:, 2]
    safe_z = torch.where(z > near, z, torch.ones_like(z))
    x = K[0, 0] * vertices[:, 0] / safe_z + K[0, 1] * vertices[:, 1] / safe_z + K[0, 2]
    y = K[1, 1] * vertices[:, 1] / safe_z + K[1, 2]
    tri_xy = torch.stack([x, y], dim=-1)[faces]          # (F, 3, 2)
    tri_z = safe_z[faces]                                 # (F, 3)
    table = _triangle_table(tri_xy, tri_z)

    twice_area = ((tri_xy[:, 1, 0] - tri_xy[:, 0, 0]) * (tri_xy[:, 2, 1] - tri_xy[:, 0, 1])
                  - (tri_xy[:, 1, 1] - tri_xy[:, 0, 1]) * (tri_xy[:, 2, 0] - tri_xy[:, 0, 0]))
    lo, hi = tri_xy.min(dim=1).values, tri_xy.max(dim=1).values
    x_min, y_min = lo[:, 0].ceil().clamp(min=0).long(), lo[:, 1].ceil().clamp(min=0).long()
    x_max, y_max = hi[:, 0].floor().clamp(max=width - 1).long(), hi[:, 1].floor().clamp(max=height - 1).long()
    box_w = (x_max - x_min + 1).clamp(min=0)
    box_h = (y_max - y_min + 1).clamp(min=0)
    keep = (z[faces] > near).all(dim=1) & (twice_area.abs() > 1e-12) & (box_w > 0) & (box_h > 0)
    tri_ids = torch.nonzero(keep).squeeze(1)

    zbuffer = torch.full((height * width,), float("inf"), device=device)
    candidates = []  # (pixel, triangle, depth) of candidate pixels (depth inf outside), per chunk
    counts = (box_w * box_h)[tri_ids]
    bounds = torch.cumsum(counts, 0)
    start = 0
    while start < len(tri_ids):
        # Take triangles until the chunk holds about _PAIR_CHUNK candidate pixels.
        base = int(bounds[start - 1]) if start > 0 else 0
        stop = max(int(torch.searchsorted(bounds, base + _PAIR_CHUNK, right=True)), start + 1)
        chunk, n = tri_ids[start:stop], counts[start:stop]
        tri = torch.repeat_interleave(chunk, n)
        offsets = torch.arange(int(n.sum()), device=device) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        row, col = torch.div(offsets, box_w[tri], rounding_mode="floor"), offsets % box_w[tri]
        px, py = x_min[tri] + col, y_min[tri] + row
        screen, inv_depth = _barycentric(table[tri], px.float(), py.float())
        inside = (screen >= -_INSIDE_EPS).all(dim=1)
        depth = torch.where(inside, 1.0 / inv_depth, torch.full_like(inv_depth, float("inf")))
        pixel = py * width + px
        zbuffer.scatter_reduce_(0, pixel, depth, reduce="amin")
        candidates.append((pixel, tri, depth))
        start = stop

    face_buffer = torch.full((height * width,), -1, dtype=torch.int64, device=device)
    for pixel, tri, depth in candidates:
        front = (depth <= zbuffer[pixel]) & torch.isfinite(depth)
        face_buffer.scatter_reduce_(0, pixel[front], tri[front], reduce="amax")

    face_index = face_buffer.view(height, width)
    barycentric = torch.zeros(height * width, 3, device=device)
    depth_image = torch.zeros(height * width, device=device)
    covered = torch.nonzero(face_buffer >= 0).squeeze(1)
    if len(covered):
        rows = table[face_buffer[covered]]
        px, py = (covered % width).float(), torch.div(covered, width, rounding_mode="floor").float()
        screen, inv_depth = _barycentric(rows, px, py)
        depth_image[covered] = 1.0 / inv_depth
        barycentric[covered] = screen * rows[:, 9:12] / inv_depth[:, None]
    return Fragments(face_index, barycentric.view(height, width, 3), depth_image.view(height, width))


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V, 3) unit area-weighted vertex normals (zero for unused vertices)."""
    v0, v1, v2 = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    face_n = torch.cross(v1 - v0, v2 - v0, dim=1)
    normals = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), face_n.repeat_interleave(3, dim=0))
    return torch.nn.functional.normalize(normals, dim=1)


def render_mesh(vertices, faces, K, image_size, vertex_colors=None, light_direction=(0.3, -0.5, -1.0),
                ambient: float = 0.35, background=None, near: float = 1e-3, normals=None,
                attributes=None) -> RenderOutput:
    """Render a mesh: silhouette, depth and two-sided Lambert shading with smooth vertex normals.

    vertex_colors: (V, 3) in [0, 1] or None (light grey). light_direction: camera-frame direction from
    the surface towards the light. background: (H, W, 3) image in [0, 1] or None (black). normals:
    (V, 3) camera-frame vertex normals to shade with instead of the mesh's own (e.g. to join two
    meshes without a shading step). attributes: (V, A) per-vertex values, A <= 4, returned
    interpolated (perspective-correct) per pixel in `RenderOutput.attributes` (e.g. rest-pose
    coordinates for surface detail drawn in image space).
    """
    vertices = _as_tensor(vertices, torch.float32)
    device = vertices.device
    faces = _as_tensor(faces, torch.int64, device)
    frags = rasterize(vertices, faces, K, image_size, near=near)
    height, width = frags.depth.shape
    mask = frags.face_index >= 0
    if vertex_colors is None:
        colors = torch.full_like(vertices, 0.8)
    else:
        colors = _as_tensor(vertex_colors, torch.float32, device)
        if colors.shape != vertices.shape:
            raise ValueError(f"vertex_colors must have shape {tuple(vertices.shape)}, got {tuple(colors.shape)}")
    rgb = (torch.zeros(height, width, 3, device=device) if background is None
           else _as_tensor(background, torch.float32, device).clone())
    if rgb.shape != (height, width, 3):
        raise ValueError(f"background must have shape ({height}, {width}, 3), got {tuple(rgb.shape)}")
    values = None
    if attributes is not None:
        attributes = _as_tensor(attributes, torch.float32, device)
        if attributes.ndim != 2 or attributes.shape[0] != vertices.shape[0] or attributes.shape[1] > 4:
            raise ValueError(f"attributes must have shape ({vertices.shape[0]}, A <= 4), got {tuple(attributes.shape)}")
        values = torch.zeros(height, width, attributes.shape[1], device=device)
    if mask.any():
        tri = faces[frags.face_index[mask]]                      # (N, 3)
        bary = frags.barycentric[mask][..., None]                # (N, 3, 1)
        if normals is None:
            normals = vertex_normals(vertices, faces)
        else:
            normals = _as_tensor(normals, torch.float32, device)
            if normals.shape != vertices.shape:
                raise ValueError(f"normals must have shape {tuple(vertices.shape)}, got {tuple(normals.shape)}")
        if values is not None:
            values[mask] = (attributes[tri] * bary).sum(dim=1)
        normal = torch.nn.functional.normalize((normals[tri] * bary).sum(dim=1), dim=1)
        point = (vertices[tri] * bary).sum(dim=1)
        # Two-sided: turn normals towards the camera (we may see inside faces through a hole).
        facing = (normal * point).sum(dim=1, keepdim=True)
        normal = torch.where(facing > 0, -normal, normal)
        light = torch.nn.functional.normalize(_as_tensor(light_direction, torch.float32, device), dim=0)
        diffuse = (normal @ light).clamp(min=0.0)[:, None]
        color = (colors[tri] * bary).sum(dim=1)
        rgb[mask] = (color * (ambient + (1.0 - ambient) * diffuse)).clamp(0.0, 1.0)
    return RenderOutput(mask, frags.depth, frags.face_index, rgb, values)
