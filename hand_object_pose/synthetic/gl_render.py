"""Headless OpenGL renderer (moderngl over EGL) with the same outputs and conventions as
`raster.render_mesh`: silhouette, depth (m), face ids, two-sided Lambert RGB and interpolated vertex attributes.

Much faster than the torch rasteriser for bigger images; needs moderngl and an EGL driver (Mesa's
llvmpipe is enough, no GPU). ``make_renderer`` picks it when available and falls back to the torch
rasteriser otherwise. Pixel centres sit at integer coordinates of K (OpenCV); GL samples pixel
centres too, so both renderers cover the same pixels up to ties on triangle edges.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from hand_object_pose.synthetic.raster import RenderOutput, render_mesh, vertex_normals

_VERTEX_SHADER = """
#version 330
uniform mat3 K;          // row-major intrinsics, passed transposed
uniform vec2 size;       // width, height
uniform vec2 clip;       // near, far
in vec3 position;        // camera frame (OpenCV), metres
in vec3 normal;
in vec3 color;
in vec4 attr;
out vec3 v_position;
out vec3 v_normal;
out vec3 v_color;
out vec4 v_attr;
void main() {
    vec3 p = position;
    // Pixel u = fx x/z + s y/z + cx with pixel centres at integers -> NDC, times w = z.
    float xc = (K[0][0] * p.x + K[1][0] * p.y + (K[2][0] + 0.5) * p.z) * 2.0 / size.x - p.z;
    float yc = (K[1][1] * p.y + (K[2][1] + 0.5) * p.z) * 2.0 / size.y - p.z;  // row 0 read back first
    float n = clip.x, f = clip.y;
    gl_Position = vec4(xc, yc, (f + n) / (f - n) * p.z - 2.0 * f * n / (f - n), p.z);
    v_position = p;
    v_normal = normal;
    v_color = color;
    v_attr = attr;
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 light;
uniform float ambient;
in vec3 v_position;
in vec3 v_normal;
in vec3 v_color;
in vec4 v_attr;
layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_depth;
layout(location = 2) out float out_face;
layout(location = 3) out vec4 out_attr;
void main() {
    vec3 n = normalize(v_normal);
    if (dot(n, v_position) > 0.0) n = -n;   // two-sided: face the camera
    float diffuse = max(dot(n, light), 0.0);
    out_color = vec4(clamp(v_color * (ambient + (1.0 - ambient) * diffuse), 0.0, 1.0), 1.0);
    out_depth = v_position.z;
    out_face = float(gl_PrimitiveID + 1);
    out_attr = v_attr;
}
"""


class GLRenderer:
    """One offscreen EGL context and framebuffer per image size; ``render`` matches ``render_mesh``."""

    def __init__(self, image_size: tuple[int, int], near: float = 1e-3, far: float = 100.0, backend: str = "egl"):
        import moderngl

        self.height, self.width = (int(s) for s in image_size)
        self.near, self.far = near, far
        self.ctx = moderngl.create_standalone_context(backend=backend)
        self.program = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        size = (self.width, self.height)
        self.targets = [self.ctx.texture(size, 4, dtype="f4"), self.ctx.texture(size, 1, dtype="f4"),
                        self.ctx.texture(size, 1, dtype="f4"), self.ctx.texture(size, 4, dtype="f4")]
        self.fbo = self.ctx.framebuffer(color_attachments=self.targets,
                                        depth_attachment=self.ctx.depth_renderbuffer(size))

    def render(self, vertices, faces, K, vertex_colors=None, light_direction=(0.3, -0.5, -1.0),
               ambient: float = 0.35, background=None, normals=None, attributes=None) -> RenderOutput:
        # Make this context current: another renderer in the process may have switched contexts.
        with self.ctx:
            return self._render(vertices, faces, K, vertex_colors, light_direction, ambient, background, normals,
                                attributes)

    def _render(self, vertices, faces, K, vertex_colors, light_direction, ambient, background, normals,
                attributes) -> RenderOutput:
        v = torch.as_tensor(np.asarray(vertices, dtype=np.float32))
        all_faces = torch.as_tensor(np.asarray(faces, dtype=np.int64))
        # Triangles with a vertex behind the near plane are dropped, as in the torch rasteriser.
        kept = torch.nonzero((v[all_faces][..., 2] > self.near).all(dim=1)).squeeze(1)
        f = all_faces[kept]
        if normals is None:
            normals = vertex_normals(v, f).numpy()
        elif np.shape(normals) != tuple(v.shape):
            raise ValueError(f"normals must have shape {tuple(v.shape)}, got {np.shape(normals)}")
        attr = np.zeros((len(v), 4), np.float32)
        if attributes is not None:
            attributes = np.asarray(attributes, np.float32)
            if attributes.ndim != 2 or len(attributes) != len(v) or attributes.shape[1] > 4:
                raise ValueError(f"attributes must have shape ({len(v)}, A <= 4), got {attributes.shape}")
            attr[:, :attributes.shape[1]] = attributes
        colors = (np.full((len(v), 3), 0.8, np.float32) if vertex_colors is None
                  else np.asarray(vertex_colors, dtype=np.float32))
        if colors.shape != tuple(v.shape):
            raise ValueError(f"vertex_colors must have shape {tuple(v.shape)}, got {colors.shape}")
        light = np.asarray(light_direction, dtype=np.float64)
        self.program["K"].write(np.asarray(K, dtype=np.float32).T.tobytes())
        self.program["size"].value = (float(self.width), float(self.height))
        self.program["clip"].value = (self.near, self.far)
        self.program["light"].value = tuple(light / np.linalg.norm(light))
        self.program["ambient"].value = float(ambient)
        data = np.hstack([v.numpy(), normals, colors, attr]).astype(np.float32)
        vbo = self.ctx.buffer(data.tobytes())
        ibo = self.ctx.buffer(f.numpy().astype(np.int32).tobytes())
        vao = self.ctx.vertex_array(self.program, [(vbo, "3f 3f 3f 4f", "position", "normal", "color", "attr")],
                                    index_buffer=ibo, index_element_size=4)
        self.fbo.use()
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.enable(self.ctx.DEPTH_TEST)
        vao.render()
        shape = (self.height, self.width)
        rgb = np.frombuffer(self.fbo.read(components=4, attachment=0, dtype="f4"), np.float32).reshape(*shape, 4)
        depth = np.frombuffer(self.fbo.read(components=1, attachment=1, dtype="f4"), np.float32).reshape(shape)
        face = np.frombuffer(self.fbo.read(components=1, attachment=2, dtype="f4"), np.float32).reshape(shape)
        for resource in (vao, vbo, ibo):
            resource.release()
        face_index = np.where(face > 0, kept.numpy()[np.maximum(face.astype(np.int64) - 1, 0)], -1)
        mask = face_index >= 0
        values = None
        if attributes is not None:
            values = np.frombuffer(self.fbo.read(components=4, attachment=3, dtype="f4"), np.float32).reshape(*shape, 4)
            values = torch.from_numpy(np.where(mask[..., None], values[..., :attributes.shape[1]], 0).astype(np.float32))
        image = np.zeros((*shape, 3), np.float32) if background is None else np.array(background, np.float32)
        if image.shape != (*shape, 3):
            raise ValueError(f"background must have shape ({self.height}, {self.width}, 3), got {image.shape}")
        image[mask] = rgb[mask, :3]
        return RenderOutput(torch.from_numpy(mask), torch.from_numpy(np.where(mask, depth, 0).astype(np.float32)),
                            torch.from_numpy(face_index), torch.from_numpy(image), values)

    def release(self) -> None:
        with self.ctx:
            self.fbo.release()
        self.ctx.release()


def make_renderer(image_size: tuple[int, int], prefer_gl: bool = True) -> tuple[str, Callable[..., RenderOutput]]:
    """("gl" | "torch", render(vertices, faces, K, **kwargs)): GL when it can start, else the torch rasteriser."""
    if prefer_gl:
        try:
            gl = GLRenderer(image_size)
        except Exception:  # no moderngl / no EGL driver: fall back, the torch path always works
            gl = None
        if gl is not None:
            return "gl", gl.render
    return "torch", lambda vertices, faces, K, **kwargs: render_mesh(vertices, faces, K, image_size, **kwargs)

