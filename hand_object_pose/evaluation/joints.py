"""Hand-joint metrics as the benchmarks define them (InterHand2.6M, HO-3D, DexYCB).

Arrays: joints (N, J, 3) in one unit (metres or millimetres: the result is in the same unit),
validity masks (N, J) bool. Hand joints are in the canonical wrist-first order, so the root
(wrist) is index 0 unless `root_index` says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be (N, J, 3); got {pred.shape} and {gt.shape}")
    return pred, gt


def _valid_mask(valid, shape) -> np.ndarray:
    if valid is None:
        return np.ones(shape[:2], dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != tuple(shape[:2]):
        raise ValueError(f"valid must be (N, J) = {tuple(shape[:2])}; got {valid.shape}")
    return valid


def joint_errors(pred, gt, root_index: int | None = 0) -> np.ndarray:
    """Euclidean error per joint (N, J); root-aligned per hand when `root_index` is not None."""
    pred, gt = _check_pair(pred, gt)
    if root_index is not None:
        pred = pred - pred[:, root_index:root_index + 1]
        gt = gt - gt[:, root_index:root_index + 1]
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred, gt, valid=None, root_index: int | None = 0) -> float:
    """Mean per-joint position error over all valid joints of all samples (root-aligned per hand)."""
    err = joint_errors(pred, gt, root_index)
    valid = _valid_mask(valid, err.shape + (3,))
    if root_index is not None:
        # A root-aligned error is only meaningful when the root itself is annotated.
        valid = valid & valid[:, root_index:root_index + 1]
    return float(err[valid].mean()) if valid.any() else float("nan")


def mpjpe_per_joint(pred, gt, valid=None, root_index: int | None = 0) -> np.ndarray:
    """(J,) error of each joint averaged over the samples where it is valid (InterHand2.6M's first step;
    the paper figure is the mean of this vector)."""
    err = joint_errors(pred, gt, root_index)
    valid = _valid_mask(valid, err.shape + (3,))
    if root_index is not None:
        valid = valid & valid[:, root_index:root_index + 1]
    counts = valid.sum(axis=0)
    sums = np.where(valid, err, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


@dataclass
class SplitMPJPE:
    single: float
    interacting: float
    all: float


def interhand_mpjpe(pred, gt, valid, interacting) -> SplitMPJPE:
    """InterHand2.6M protocol: per-joint means over samples, then the mean over joints, for the
    single-hand frames, the interacting frames and all frames. `interacting`: (N,) bool."""
    interacting = np.asarray(interacting, dtype=bool)

    def protocol(mask):
        if not mask.any():
            return float("nan")
        per_joint = mpjpe_per_joint(np.asarray(pred)[mask], np.asarray(gt)[mask], np.asarray(valid)[mask])
        return float(np.nanmean(per_joint))

    return SplitMPJPE(protocol(~interacting), protocol(interacting), protocol(np.ones_like(interacting)))


def mrrpe(pred_right_root, pred_left_root, gt_right_root, gt_left_root, valid=None) -> float:
    """Mean relative-root position error: || (L - R)_pred - (L - R)_gt || averaged over samples where
    both roots are valid. Roots: (N, 3). `valid`: (N,) bool (both wrists annotated, interacting frame)."""
    rel_pred = np.asarray(pred_left_root, np.float64) - np.asarray(pred_right_root, np.float64)
    rel_gt = np.asarray(gt_left_root, np.float64) - np.asarray(gt_right_root, np.float64)
    if rel_pred.shape != rel_gt.shape or rel_pred.shape[-1] != 3:
        raise ValueError(f"roots must all be (N, 3); got {rel_pred.shape} and {rel_gt.shape}")
    err = np.linalg.norm(rel_pred - rel_gt, axis=-1)
    mask = np.ones(len(err), bool) if valid is None else np.asarray(valid, bool)
    return float(err[mask].mean()) if mask.any() else float("nan")


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity transform (scale, rotation, translation) of `pred` (J, 3) that best fits `gt` (J, 3)
    in least squares (Umeyama); reflections are excluded. Returns the aligned prediction."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    p, g = pred - mu_p, gt - mu_g
    var_p = (p ** 2).sum()
    if var_p == 0:
        return np.broadcast_to(mu_g, pred.shape).copy()
    u, s, vt = np.linalg.svd(g.T @ p)
    d = np.sign(np.linalg.det(u @ vt))
    correction = np.diag([1.0, 1.0, d if d != 0 else 1.0])
    rotation = u @ correction @ vt
    scale = (s * np.diag(correction)).sum() / var_p
    return scale * p @ rotation.T + mu_g


def scale_translation_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """HO-3D / FreiHAND 'scale and translation aligned' prediction: centre both point sets (J, 3) on
    their means, rescale the prediction to the ground truth's Frobenius norm, move it onto gt's mean."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    p, g = pred - mu_p, gt - mu_g
    norm_p = np.linalg.norm(p)
    scale = np.linalg.norm(g) / norm_p if norm_p > 0 else 0.0
    return p * scale + mu_g


def aligned_error(pred, gt, valid=None, align: str = "procrustes") -> float:
    """Mean per-point error after per-sample alignment ("procrustes" = PA-MPJPE / PA mesh error,
    "scale_translation" = HO-3D's aligned error). Works for joints (N, 21, 3) and meshes (N, V, 3)."""
    pred, gt = _check_pair(pred, gt)
    valid = _valid_mask(valid, pred.shape)
    fn = {"procrustes": procrustes_align, "scale_translation": scale_translation_align}.get(align)
    if fn is None:
        raise ValueError(f"align must be 'procrustes' or 'scale_translation'; got {align!r}")
    errors = []
    for p, g, v in zip(pred, gt, valid):
        if v.sum() < 3:
            continue
        aligned = fn(p[v], g[v])
        errors.append(np.linalg.norm(aligned - g[v], axis=-1))
    return float(np.concatenate(errors).mean()) if errors else float("nan")


def pck_curve(errors, thresholds) -> np.ndarray:
    """Fraction of errors <= each threshold. errors: any shape (NaN = invalid, ignored)."""
    errors = np.asarray(errors, np.float64).ravel()
    errors = errors[np.isfinite(errors)]
    thresholds = np.asarray(thresholds, np.float64)
    if errors.size == 0:
        return np.full(thresholds.shape, np.nan)
    return (errors[None, :] <= thresholds[:, None]).mean(axis=1)


def auc_pck(errors, max_threshold: float, num_steps: int = 100) -> tuple[float, np.ndarray, np.ndarray]:
    """Area under the PCK curve on [0, max_threshold], normalised to [0, 1] (trapezoidal rule over
    `num_steps` equal intervals). Returns (auc, thresholds, pck). HO-3D: 0-5 cm; DexYCB: 0-50 mm."""
    thresholds = np.linspace(0.0, max_threshold, num_steps + 1)
    pck = pck_curve(errors, thresholds)
    widths = np.diff(thresholds)
    area = float(((pck[1:] + pck[:-1]) * 0.5 * widths).sum() / max_threshold)
    return area, thresholds, pck
