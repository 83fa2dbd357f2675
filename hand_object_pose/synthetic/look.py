"""How a synthetic scene looks: backgrounds with surfaces and clutter, skin, environment light,
cast shadows and camera effects (issue 14: frames a detector trained on real photos believes).

Everything is procedural (no image files), cheap (numpy/OpenCV on coarse grids, upsampled) and
deterministic in the `numpy.random.Generator` it is given. Images are (H, W, 3) float32 RGB in
[0, 1] until `apply_camera` turns them into uint8. Nothing here moves a pixel of the ground truth:
the camera effects (blur, noise, JPEG, white balance, exposure) change colours only, so joints,
masks and depth stay exact.
"""
from __future__ import annotations

import cv2
import numpy as np

SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.92, 0.72, 0.58], [0.84, 0.62, 0.48], [0.72, 0.50, 0.36],
                       [0.56, 0.38, 0.26], [0.40, 0.26, 0.18], [0.30, 0.19, 0.13]]) * [1.0, 0.95, 0.97]
"""Linear-ish RGB albedos from very light to very dark skin. Green and blue are lowered by 5 and 3 % (generator
version 11): the rendered hands' median hue was 23 deg, at the yellow end of skin in photos and on the hue of
wood and beige surfaces; at 21 deg a real-photo hand detector found 72 more of 4 189 hands (realism bench, seeds
14000-16000, 1000 scenes each), side views on skin-hued backgrounds most. 8 % / 5 % lower: 19 more of 2 797."""

# Everyday surface colours: wall paints, wood, laminate, fabric, paper, plastics (RGB in [0, 1]).
_WALLS = np.array([[0.92, 0.91, 0.88], [0.85, 0.84, 0.80], [0.78, 0.80, 0.82], [0.88, 0.84, 0.74],
                   [0.70, 0.74, 0.70], [0.62, 0.66, 0.72], [0.90, 0.86, 0.80], [0.55, 0.55, 0.55]])
_WOODS = np.array([[0.62, 0.45, 0.30], [0.75, 0.58, 0.40], [0.48, 0.32, 0.20], [0.82, 0.70, 0.52],
                   [0.35, 0.24, 0.16]])
_THINGS = np.array([[0.95, 0.95, 0.95], [0.10, 0.10, 0.11], [0.75, 0.15, 0.12], [0.15, 0.30, 0.65],
                    [0.20, 0.50, 0.25], [0.90, 0.75, 0.20], [0.55, 0.40, 0.28], [0.60, 0.62, 0.65],
                    [0.35, 0.20, 0.45], [0.85, 0.45, 0.15], [0.30, 0.30, 0.32], [0.80, 0.78, 0.70]])


def fractal_noise(rng: np.random.Generator, width: int, height: int, octaves: int = 5, base: int = 3,
                  persistence: float = 0.55) -> np.ndarray:
    """(H, W) float32 value noise, zero mean, about unit standard deviation."""
    out = np.zeros((height, width), np.float32)
    amplitude, total = 1.0, 0.0
    for k in range(octaves):
        cells = base * 2 ** k
        grid = rng.standard_normal((max(2, cells * height // max(width, height) + 1), cells + 1)).astype(np.float32)
        out += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude ** 2
        amplitude *= persistence
    return out / np.sqrt(total)


def _jitter(rng, colour, amount=0.08):
    return np.clip(np.asarray(colour) * rng.uniform(1 - amount, 1 + amount, 3), 0.02, 1.0)


def _wood(rng, width, height) -> np.ndarray:
    base = _jitter(rng, _WOODS[rng.integers(len(_WOODS))])
    dark = base * rng.uniform(0.6, 0.8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    angle = rng.uniform(-0.3, 0.3) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    warp = fractal_noise(rng, width, height, octaves=3, base=2)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (rng.uniform(15, 40) * t + 0.8 * warp))
    t_grain = rings ** rng.uniform(2, 6)
    image = base * (1 - t_grain[..., None]) + dark * t_grain[..., None]
    return image * (1 + 0.04 * fractal_noise(rng, width, height, octaves=2, base=24)[..., None])


def _paint(rng, colour, amount=0.1, cast=0.25):
    """A wall paint near `colour`: lighter or darker by up to `amount`, with only `cast` of `_jitter`'s
    per-channel variation (the same three draws): painted walls are near their palette hue, where an
    independent ±10-12 % per channel turns white walls peach, pink or green."""
    factors = rng.uniform(1 - amount, 1 + amount, 3)
    factors = factors.mean() + cast * (factors - factors.mean())
    return np.clip(np.asarray(colour) * factors, 0.02, 1.0)


def _plain(rng, width, height, palette) -> np.ndarray:
    pick = palette[rng.integers(len(palette))]
    colour = _paint(rng, pick, 0.12) if palette is _WALLS else _jitter(rng, pick, 0.12)
    texture = 0.03 * fractal_noise(rng, width, height, octaves=4, base=6)
    return np.broadcast_to(colour, (height, width, 3)) * (1 + texture[..., None])


def _tiles(rng, width, height) -> np.ndarray:
    colour = _paint(rng, _WALLS[rng.integers(len(_WALLS))], 0.1)
    grout = colour * rng.uniform(0.55, 0.8)
    step = rng.uniform(0.06, 0.2) * max(width, height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    line = max(1.0, step * 0.04)
    on_grout = ((xx % step) < line) | ((yy % step) < line)
    tint = 1 + 0.05 * cv2.resize(rng.standard_normal((int(height / step) + 2, int(width / step) + 2)).astype(
        np.float32), (width, height), interpolation=cv2.INTER_NEAREST)
    return np.where(on_grout[..., None], grout, colour * tint[..., None])


def _fabric(rng, width, height) -> np.ndarray:
    colour = _jitter(rng, _THINGS[rng.integers(len(_THINGS))], 0.1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(2.5, 5.0)
    weave = 0.5 + 0.25 * (np.sin(2 * np.pi * xx / period) + np.sin(2 * np.pi * yy / period))
    folds = fractal_noise(rng, width, height, octaves=3, base=3)
    return colour * (0.85 + 0.1 * weave[..., None] + 0.12 * folds[..., None])


def _surface(rng, width, height, kind: str) -> np.ndarray:
    if kind == "wood":
        return _wood(rng, width, height)
    if kind == "tiles":
        return _tiles(rng, width, height)
    if kind == "fabric":
        return _fabric(rng, width, height)
    return _plain(rng, width, height, _WALLS if kind == "wall" else _THINGS)


def _clutter(rng, image: np.ndarray, count: int, blur_px: float) -> np.ndarray:
    """Out-of-focus everyday things: boxes, books, screens, round things, cables (drawn, then blurred)."""
    height, width = image.shape[:2]
    layer = image.copy()
    scale = max(width, height)
    for _ in range(count):
        colour = tuple(float(c) for c in _jitter(rng, _THINGS[rng.integers(len(_THINGS))], 0.15))
        shade = tuple(float(c) * rng.uniform(0.6, 0.85) for c in colour)
        x, y = int(rng.uniform(-0.1, 1.0) * width), int(rng.uniform(-0.1, 1.0) * height)
        w, h = int(rng.uniform(0.04, 0.3) * scale), int(rng.uniform(0.04, 0.3) * scale)
        kind = rng.integers(4)
        if kind == 0:      # box / book with a shaded side
            cv2.rectangle(layer, (x, y), (x + w, y + h), colour, -1)
            side = max(2, w // rng.integers(5, 10))
            cv2.rectangle(layer, (x + w, y + side), (x + w + side, y + h + side), shade, -1)
        elif kind == 1:    # round thing
            cv2.ellipse(layer, (x, y), (w // 2, h // 3), rng.uniform(0, 180), 0, 360, colour, -1)
            cv2.ellipse(layer, (x, y + h // 6), (w // 2, h // 3), rng.uniform(0, 180), 0, 180, shade, -1)
        elif kind == 2:    # screen / picture frame
            cv2.rectangle(layer, (x, y), (x + w, y + h), (0.08, 0.08, 0.09), -1)
            inner = tuple(float(c) for c in rng.uniform(0.2, 0.9, 3))
            cv2.rectangle(layer, (x + 3, y + 3), (x + w - 3, y + h - 3), inner, -1)
        else:              # cable / pen
            end = (int(x + rng.normal(0, 0.3) * scale), int(y + rng.normal(0, 0.3) * scale))
            cv2.line(layer, (x, y), end, colour, max(1, scale // rng.integers(60, 200)))
    if blur_px > 0.3:
        layer = cv2.GaussianBlur(layer, (0, 0), blur_px)
    return layer


def background_image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: a room (wall above a table edge), a desk top, a plain or textured
    surface, each with out-of-focus clutter and smooth light fall-off; a small share of the old
    abstract kinds (gradient, stripes) stays as hard cases. Drawn at half resolution (the
    background is out of focus behind the hands) and upsampled."""
    full = (width, height)
    width, height = max(16, width // 2), max(16, height // 2)
    return cv2.resize(_background(rng, width, height), full, interpolation=cv2.INTER_LINEAR)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    kind = rng.choice(["room", "desk", "surface", "abstract"], p=[0.45, 0.3, 0.17, 0.08])
    if kind == "room":
        wall = _surface(rng, width, height, rng.choice(["wall", "wall", "tiles", "fabric"]))
        table = _surface(rng, width, height, rng.choice(["wood", "wood", "plain", "fabric"]))
        edge = rng.uniform(0.35, 0.85) * height
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        slope = rng.uniform(-0.15, 0.15)
        below = (yy > edge + slope * (xx - width / 2))[..., None]
        image = _clutter(rng, wall, int(rng.integers(3, 10)), rng.uniform(1.0, 4.0) * width / 640)
        image = np.where(below, table, image)
        image = _clutter(rng, image, int(rng.integers(0, 4)), rng.uniform(0.5, 2.0) * width / 640)
    elif kind == "desk":
        image = _surface(rng, width, height, rng.choice(["wood", "plain", "fabric", "tiles"]))
        image = _clutter(rng, image, int(rng.integers(2, 9)), rng.uniform(0.5, 3.0) * width / 640)
    elif kind == "surface":
        image = _surface(rng, width, height, rng.choice(["wall", "fabric", "tiles", "wood", "plain"]))
    else:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
        c0, c1 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
        angle = rng.uniform(0, np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        if rng.random() < 0.5:
            image = c0 * (1 - np.clip(t, 0, 1)[..., None]) + c1 * np.clip(t, 0, 1)[..., None]
        else:
            image = np.where((np.sin(2 * np.pi * rng.uniform(4, 20) * t) > 0)[..., None], c0, c1)
    # Light fall-off across the scene (a lamp or window on one side).
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    angle = rng.uniform(0, 2 * np.pi)
    falloff = 1 + rng.uniform(0.0, 0.35) * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.4))
    return np.clip(image * falloff[..., None], 0, 1).astype(np.float32)


def skin_albedo(rng: np.random.Generator) -> np.ndarray:
    """(3,) RGB skin albedo: a point between two neighbouring tones, with redness/yellowness jitter."""
    k = rng.uniform(0, len(SKIN_TONES) - 1)
    lo = int(np.floor(k))
    hi = min(lo + 1, len(SKIN_TONES) - 1)
    tone = SKIN_TONES[lo] + (k - lo) * (SKIN_TONES[hi] - SKIN_TONES[lo])
    return np.clip(tone * [rng.uniform(0.95, 1.08), rng.uniform(0.95, 1.03), rng.uniform(0.9, 1.05)], 0, 1)


def hemisphere_tint(normals: np.ndarray, sky: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """(V, 3) environment light multiplier per vertex from unit normals (V, 3), camera frame
    (y down): `sky` from above, `ground` (bounce off a table) from below."""
    up = np.clip(-normals[:, 1], -1, 1)[:, None]
    return ground + (sky - ground) * (0.5 + 0.5 * up)


def ambient_occlusion(points: np.ndarray, normals: np.ndarray, occluders: np.ndarray,
                      radius_m: float = 0.025) -> np.ndarray:
    """(V,) share in [0, 1] of the hemisphere above each point (V, 3) (unit `normals` (V, 3)) that
    nearby surface points `occluders` (M, 3) (metres, any frame shared with `points`) fill: the mean
    cosine towards occluders closer than `radius_m`, 0 on convex or open surface, towards 1 deep
    between fingers, under curled fingers and where a hand touches an object."""
    points = np.asarray(points, np.float32)
    normals = np.asarray(normals, np.float32)
    occluders = np.asarray(occluders, np.float32)
    lo, hi = points.min(axis=0) - radius_m, points.max(axis=0) + radius_m
    occluders = occluders[np.all((occluders > lo) & (occluders < hi), axis=1)]
    # Squared distances per coordinate (tiny matrix products are slow through BLAS threads); the
    # rest only on the pairs within the radius.
    dist2 = np.zeros((len(points), len(occluders)), np.float32)
    for k in range(3):
        dist2 += (points[:, k, None] - occluders[None, :, k]) ** 2
    i, j = np.nonzero((dist2 < radius_m ** 2) & (dist2 > (0.15 * radius_m) ** 2))
    dist = np.sqrt(dist2[i, j])
    cos = np.einsum("pk,pk->p", normals[i], occluders[j] - points[i]) / dist
    weight = 1 - dist / radius_m
    total = np.bincount(i, weights=weight, minlength=len(points))
    ao = np.bincount(i, weights=np.clip(cos, 0, 1) * weight, minlength=len(points)) / (total + 1e-6)
    return np.clip(2.0 * ao, 0, 1)


def sample_camera(rng: np.random.Generator) -> dict:
    """Camera effects of one frame (see `apply_camera`)."""
    return {
        "white_balance": np.array([rng.uniform(0.85, 1.15), 1.0, rng.uniform(0.82, 1.15)], np.float32),
        "gamma": float(rng.uniform(0.85, 1.15)),
        "contrast": float(rng.uniform(0.9, 1.15)),
        "vignette": float(rng.uniform(0.0, 0.35)),
        "defocus_px": float(rng.uniform(0.0, 1.3)) if rng.random() < 0.6 else 0.0,
        "motion_px": float(rng.uniform(2.0, 7.0)) if rng.random() < 0.2 else 0.0,
        "motion_angle": float(rng.uniform(0, 180)),
        "shot_noise": float(rng.uniform(0.0, 0.03)),
        "jpeg_quality": int(rng.integers(40, 96)) if rng.random() < 0.7 else 0,
    }


def cast_shadow(image: np.ndarray, occluders: np.ndarray, receivers: np.ndarray, offset_px: np.ndarray,
                blur_px: float, strength: float) -> np.ndarray:
    """Darken `receivers` (H, W bool: the background) where the `occluders` mask (H, W bool: hands,
    arms, object), moved by `offset_px` (dx, dy) away from the light and blurred, falls."""
    height, width = occluders.shape
    step = 4  # a soft shadow: computed at quarter resolution
    small = cv2.resize(occluders.astype(np.float32), (max(1, width // step), max(1, height // step)),
                       interpolation=cv2.INTER_AREA)
    shift = np.float32([[1, 0, offset_px[0] / step], [0, 1, offset_px[1] / step]])
    shadow = cv2.warpAffine(small, shift, small.shape[::-1])
    if blur_px / step > 0.3:
        shadow = cv2.GaussianBlur(shadow, (0, 0), blur_px / step)
    shadow = cv2.resize(shadow, (width, height), interpolation=cv2.INTER_LINEAR)
    factor = 1.0 - strength * shadow * receivers
    return image * factor[..., None]


def apply_camera(image: np.ndarray, camera: dict, exposure: float, noise: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8 through white balance, exposure, tone curve, vignetting,
    defocus / motion blur, shot + read noise (`noise`: (H, W, 3) standard-normal-scaled read noise)
    and JPEG compression. Colours only: no pixel moves."""
    height, width = image.shape[:2]
    rgb = image.astype(np.float32) * (camera["white_balance"] * np.float32(exposure))
    if camera["vignette"] > 0:
        yy, xx = np.ogrid[0:height, 0:width]
        r2 = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
        rgb *= (1 - camera["vignette"] * r2.astype(np.float32))[..., None]
    rgb = cv2.pow(np.clip(rgb, 0, 1), camera["gamma"])
    rgb = np.clip(0.5 + camera["contrast"] * (rgb - 0.5), 0, 1)
    if camera["defocus_px"] > 0.3:
        rgb = cv2.GaussianBlur(rgb, (0, 0), camera["defocus_px"])
    if camera["motion_px"] > 1.0:
        length = int(round(camera["motion_px"]))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        centre = ((length - 1) / 2, (length - 1) / 2)
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D(centre, camera["motion_angle"], 1.0), (length, length))
        rgb = cv2.filter2D(rgb, -1, kernel / max(kernel.sum(), 1e-6))
    rgb = rgb + noise * (1 + camera["shot_noise"] / 0.01 * np.sqrt(rgb))
    out = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    if camera["jpeg_quality"]:
        ok, data = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, camera["jpeg_quality"]])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    return out


def _segment_distance(points_xy: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """(N,) distance of points (N, 2) to a polyline (K, 2), same units."""
    best = np.full(len(points_xy), np.inf)
    for a, b in zip(polyline[:-1], polyline[1:]):
        ab = b - a
        t = np.clip(((points_xy - a) @ ab) / (ab @ ab), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points_xy - (a + t[:, None] * ab), axis=1))
    return best


# Palm creases of the right stand-in hand in its rest frame (x towards the thumb, y along the fingers,
# metres), drawn on the palmar side: distal and proximal transverse creases and the thenar crease
# around the ball of the thumb, their depth and darkening weighted by PALM_CREASE_WEIGHT.
_PALM_CREASES = (
    np.array([[-0.044, 0.058], [-0.025, 0.061], [-0.005, 0.066], [0.016, 0.075]]),
    np.array([[0.040, 0.062], [0.022, 0.058], [0.000, 0.053], [-0.030, 0.047]]),
    np.array([[0.040, 0.062], [0.024, 0.051], [0.014, 0.034], [0.011, 0.012]]),
)
PALM_CREASE_WEIGHT = 0.5
"""At full weight the three palm lines read as dark cuts. Realism bench, 1000 scenes of seed 14000, the palm's
palmar side shaded smooth: a real-photo detector found 185 of 249 palm views at full weight, 201 at 0.5 (179 and 177
on seeds 15000 and 16000, where version 10 found 146 and 149); without the lines it found as many (200) but told
the hand's side of only 64 % of them (93 % at 0.5)."""


def surface_detail(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(height (N,) metres out of the skin, crease (N,) in [0, 1]) of the skin relief the smooth
    stand-in mesh lacks, at points (N, 3) given in the right stand-in hand's rest frame (metres;
    `standin_hand`: fingers +y, palm +z, thumb +x; a left hand's vertices map to the same points):
    knuckle heads over the finger bases and rounder bumps with wrinkles over the middle and end
    joints on the back; extensor tendons fanning from the wrist to the knuckles; flexion creases
    across the palmar side of every finger joint and the three main palm creases. Evaluated per
    pixel on the rest-frame coordinates the renderer interpolates (`RenderOutput.attributes`)."""
    from hand_object_pose.synthetic.standin_hand import FINGERS, THUMB, finger_frame

    p = np.asarray(points, np.float64)
    height = np.zeros(len(p))
    crease = np.zeros(len(p))
    dorsal_palm = np.clip(-p[:, 2] / 0.004, 0.0, 1.0)
    palmar_palm = np.clip(p[:, 2] / 0.004, 0.0, 1.0)

    def groove(distance, width_m, depth_m, weight):
        g = np.exp(-0.5 * (distance / width_m) ** 2) * weight
        np.subtract(height, depth_m * g, out=height)
        np.maximum(crease, g, out=crease)

    cmc = np.array([0.0277, 0.026, 0.0102])  # the thumb's base joint of the rest pose (J_regressor)
    for digit in FINGERS + (THUMB,):
        direction, lateral, pad = finger_frame(digit.name)
        base = cmc if digit is THUMB else np.asarray(digit.base)
        rel = p - base
        s = rel @ direction
        radial = rel - s[:, None] * direction
        r = np.linalg.norm(radial, axis=1) + 1e-9
        side = (radial @ pad) / r                      # +1 palmar, -1 dorsal
        l1, l2, l3 = digit.lengths
        on = (s > -0.004) & (s < l1 + l2 + l3) & (r < 2.0 * digit.radius_base)
        dorsal, palmar = on * np.clip(-1.5 * side, 0, 1), on * np.clip(1.5 * side, 0, 1)
        joints = (l1, l1 + l2) if digit is THUMB else (0.0, l1, l1 + l2)
        for k, s_joint in enumerate(joints):
            if digit is not THUMB and k == 0:
                # The knuckle head (metacarpal head) on the back, and the finger's base crease on
                # the palmar side, about 2 cm out where the finger leaves the palm.
                lat = radial @ lateral
                bump = np.exp(-0.5 * ((s + 0.002) / 0.0065) ** 2 - 0.5 * (lat / 0.0065) ** 2)
                height += 0.0022 * bump * dorsal_palm * (r < 2.0 * digit.radius_base)
                groove(s - 0.7 * l1, 0.0008, 0.0004, palmar)
                continue
            near = np.exp(-0.5 * ((s - s_joint) / 0.0045) ** 2)
            height += (0.0012 if k < len(joints) - 1 else 0.0008) * near * dorsal
            # Wrinkles over the joint on the back, a double flexion crease on the palm side.
            wrinkles = 0.5 + 0.5 * np.cos(2 * np.pi * (s - s_joint) / 0.0024)
            groove(np.zeros_like(s), 1.0, 0.0004, 0.6 * wrinkles * np.exp(-0.5 * ((s - s_joint) / 0.003) ** 2) * dorsal)
            for offset in (-0.0012, 0.0012):
                groove(s - s_joint - offset, 0.0007, 0.0004, palmar)
    # Extensor tendons on the back of the hand, from the middle of the wrist to each knuckle (only
    # points on the back of the palm are evaluated).
    back = np.flatnonzero((dorsal_palm > 0) & (p[:, 1] > 0.015) & (p[:, 1] < 0.085))
    for digit in FINGERS:
        start = np.array([0.35 * digit.base[0], 0.012])
        end = np.array([digit.base[0], digit.base[1] - 0.012])
        distance = _segment_distance(p[back, :2], np.stack([start, end]))
        fade = np.clip((p[back, 1] - 0.015) / 0.02, 0, 1) * (p[back, 1] < digit.base[1] - 0.004)
        height[back] += 0.0009 * np.exp(-0.5 * (distance / 0.002) ** 2) * fade * dorsal_palm[back]
    front = np.flatnonzero((palmar_palm > 0) & (p[:, 1] < 0.08))
    for line in _PALM_CREASES:
        g = np.exp(-0.5 * (_segment_distance(p[front, :2], line) / 0.0009) ** 2) * palmar_palm[front]
        g *= PALM_CREASE_WEIGHT
        height[front] -= 0.0006 * g
        crease[front] = np.maximum(crease[front], g)
    return height, crease


def skin_relief(image: np.ndarray, hand_mask: np.ndarray, rest_points: np.ndarray, depth: np.ndarray, focal_px: float,
                light: np.ndarray, ambient: float, strength: float, crease_darkening: float) -> np.ndarray:
    """Shade `surface_detail` into the hands' pixels of `image` (H, W, 3) float: a bump map lit by
    the key light (`light`: camera-frame direction towards it; `ambient` as in the renderer) plus
    darker creases. `hand_mask` (H, W) bool; `rest_points` (H, W, 3): each pixel's point in the
    stand-in's rest frame (interpolated by the renderer); `depth` (H, W) metres; `focal_px` turns
    image gradients of the relief into surface slopes. Colours only: no pixel moves."""
    if not hand_mask.any():
        return image
    # Work in the hands' bounding box (with a margin for the blur).
    rows, cols = np.flatnonzero(hand_mask.any(axis=1)), np.flatnonzero(hand_mask.any(axis=0))
    box = (slice(max(rows[0] - 3, 0), rows[-1] + 4), slice(max(cols[0] - 3, 0), cols[-1] + 4))
    out = image.copy()
    out[box] = _skin_relief(image[box], hand_mask[box], rest_points[box], depth[box], focal_px, light, ambient,
                            strength, crease_darkening)
    return out


def _skin_relief(image, hand_mask, rest_points, depth, focal_px, light, ambient, strength, crease_darkening):
    height_m = np.zeros(hand_mask.shape, np.float32)
    crease = np.zeros(hand_mask.shape, np.float32)
    h, c = surface_detail(rest_points[hand_mask])
    height_m[hand_mask], crease[hand_mask] = h, c
    height_m = cv2.GaussianBlur(height_m, (0, 0), 0.7)
    crease = cv2.GaussianBlur(crease, (0, 0), 0.7)
    gy, gx = np.gradient(height_m)
    # No slope across the outline or across a fold (a finger in front of the palm: the rest-frame
    # point jumps there).
    jump = np.zeros(hand_mask.shape, np.float32)
    for k in range(3):
        dy, dx = np.gradient(rest_points[..., k])
        jump = np.maximum(jump, np.abs(dx) + np.abs(dy))
    inner = cv2.erode(hand_mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    smooth = inner & (cv2.dilate(jump, np.ones((3, 3), np.uint8)) < 0.006)
    metres_per_px = np.where(hand_mask, depth, 1.0) / focal_px
    sx, sy = gx / metres_per_px * smooth, gy / metres_per_px * smooth
    light = np.asarray(light, np.float64) / np.linalg.norm(light)
    lambert = -(sx * light[0] + sy * light[1]) * (1.0 - ambient) / (ambient + 0.6 * (1.0 - ambient))
    factor = np.clip(1.0 + strength * lambert - crease_darkening * crease, 0.5, 1.5)
    return np.where(hand_mask[..., None], image * factor[..., None], image)


def edge_occlusion(image: np.ndarray, depth: np.ndarray, mask: np.ndarray, focal_px: float,
                   strength: float, gap_m: float = 0.003) -> np.ndarray:
    """Darken `image` (H, W, 3) where, within about 6 mm, a surface of `mask` (H, W bool) lies more
    than `gap_m` nearer the camera than the pixel (`depth` (H, W) metres): the dark lines between
    fingers lying on one another or on the palm, and contact shadows (screen-space ambient
    occlusion). Colours only."""
    if not mask.any():
        return image
    z = float(np.median(depth[mask]))
    radius = int(np.clip(round(0.006 * focal_px / z), 1, 12))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    far = np.where(mask, depth, 1e3).astype(np.float32)
    nearest = cv2.erode(far, kernel)
    occlusion = np.clip((far - nearest - gap_m) / 0.012, 0.0, 1.0) * mask
    occlusion = cv2.GaussianBlur(occlusion.astype(np.float32), (0, 0), max(0.5, radius / 3))
    return image * (1.0 - strength * occlusion * mask)[..., None]
