"""Train the per-hand heat-map network (`hand_heatmap`) on synthetic splits held in memory.

    python -m hand_object_pose.training.hand_heatmap_run config/train/hand_heatmap_synthetic.yaml [--set ...]
    python -m hand_object_pose.training.hand_heatmap_run CONFIG --overfit 16 --steps 300   # the sanity check

The frames' JPEG bytes and labels are read once into memory; every step crops `hand_crops` hands (left
hands mirrored; with `left_hand_share` in (0, 1) that share of them left hands) and `object_crops` objects at random with cv2 in the main process (loading stays
negligible next to the step on 2 cores); with `side_crops` > 0, that many more hands mirrored the wrong way round
(a right hand mirrored, a left hand not) train the crop's right / left presence as its handedness
(`side_weight`; every hand crop then has a side target), which the Estimator reads to tell a new hand's side.
`freeze_norm` keeps every batch norm in eval mode (its statistics and scale fixed): for fine-tuning weights
recovered from an export (`tools.weights_from_onnx`), whose folded norms have no batch statistics. AdamW, linear
warm-up then cosine to `steps`, or with `budget_minutes` > 0 cosine over that much training time (wall clock of
the steps, kept across resumes: on a shared CPU the step time varies), bfloat16 autocast on CPU (train.amp),
`threads` torch threads.

Outputs under train.out_dir: latest.pt (full resume state: model, optimiser, step, RNG, config;
written atomically every `checkpoint_minutes`, at the end and on SIGINT/SIGTERM), heldout.jsonl (one
line per held-out evaluation), TensorBoard event files. A run resumes from latest.pt unless --no-resume.
The held-out split is scored with ground-truth crops: root-relative MPJPE (mm) with the true wrist
depth, 2D error (crop px), object points' 3D error with the true centre depth (mm).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from .checkpoint import LATEST, load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from .config import load_experiment
from .tasks import build_task
from .tasks.hand_heatmap import FRAME, HAND, KIND_CHANNELS, OBJECT, canonical_rotation, collate_examples, \
    frame_points, group_roots, lift_crop_points, make_example, object_points

DEFAULTS = {"steps": 6000, "warmup_steps": 50, "hand_crops": 20, "object_crops": 6, "frame_crops": 6, "threads": 2,
            "eval_every_steps": 250, "checkpoint_minutes": 3.0, "eval_limit": 0, "min_visible_joints": 8,
            "left_hand_share": 0.0, "side_crops": 0, "freeze_norm": False}


class SyntheticFrames:
    """Frames of one or more synthetic splits in memory: JPEG bytes, K, hands, objects, the object masks (PNG
    bytes; None for a frame without an object or a split without masks).

    items: list of (frame index, kind, payload): HAND with (side, joints_cam (21, 3)), OBJECT with
    (object_id, points_cam (9, 3)) after symmetry canonicalisation, FRAME with (box, points (51, 3),
    valid (51,), presence (2,)): the letterbox square, both hands and the frame's first object.
    """

    def __init__(self, roots: list, min_visible_joints: int = 8, object_ids: tuple = ()):
        self.jpegs, self.Ks, self.items, self.masks = [], [], [], []
        classes = {name: i for i, name in enumerate(object_ids)}
        for root in roots:
            root = Path(root)
            meta = json.loads((root / "meta.json").read_text())
            width, height = meta["image_size"]
            objects = meta.get("objects", {})
            for label_path in sorted((root / "labels").glob("*.json")):
                labels = json.loads(label_path.read_text())
                frame = len(self.jpegs)
                self.jpegs.append(np.frombuffer((root / "rgb" / f"{label_path.stem}.jpg").read_bytes(), np.uint8))
                K = np.asarray(labels["K"], np.float64)
                self.Ks.append(K)
                mask_path = root / "object_mask" / f"{label_path.stem}.png"
                self.masks.append(np.frombuffer(mask_path.read_bytes(), np.uint8)
                                  if labels["objects"] and mask_path.exists() else None)
                seen = {}
                for side, hand in labels["hands"].items():
                    uv = np.asarray(hand["joints_2d"])
                    inside = np.all((uv >= 0) & (uv <= [width - 1, height - 1]), axis=-1).sum()
                    if inside >= min_visible_joints:
                        seen[side] = np.asarray(hand["joints_cam"], np.float64)
                        self.items.append((frame, HAND, (side, seen[side])))
                first_object, first_class = None, -1
                for obj in labels["objects"]:
                    info = objects.get(obj["object_id"])
                    if info is None:
                        continue
                    rotation = canonical_rotation(np.asarray(obj["rotation"]), info.get("symmetry"))
                    pts = object_points(rotation, obj["translation"], info["corners_rest"])
                    if np.all(pts[:, 2] > 0.05):
                        self.items.append((frame, OBJECT, (obj["object_id"], pts)))
                        if first_object is None:
                            first_object, first_class = pts, classes.get(obj["object_id"], -1)
                side = float(max(width, height))
                box = np.array([(width - side) / 2.0, (height - side) / 2.0, side, side])
                self.items.append((frame, FRAME, (box, *frame_points(seen, first_object), first_class)))
        self.hands = [i for i, it in enumerate(self.items) if it[1] == HAND]
        self.left_hands = [i for i in self.hands if self.items[i][2][0] == "left"]
        self.right_hands = [i for i in self.hands if self.items[i][2][0] != "left"]
        self.objects = [i for i, it in enumerate(self.items) if it[1] == OBJECT]
        self.frames = [i for i, it in enumerate(self.items) if it[1] == FRAME]
        self.classes = classes

    def image(self, frame: int) -> np.ndarray:
        return cv2.cvtColor(cv2.imdecode(self.jpegs[frame], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def object_mask(self, frame: int):
        """(H, W) uint8 object mask of a frame (non-zero on the object), or None."""
        data = self.masks[frame]
        return None if data is None else cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)

    def example(self, item: int, size: int, rng=None, side_target: float = -1.0):
        """The crop of item `item` (augmented with `rng`); for a hand, `side_target` 0 mirrors it the wrong way
        round (`CropExample.side_target`)."""
        frame, kind, payload = self.items[item]
        if kind == FRAME:
            box, points, valid, presence, object_class = payload
            return make_example(self.image(frame), self.Ks[frame], kind, points, False, size, rng, valid=valid,
                                presence=presence, box=box, object_class=object_class)
        mirrored = kind == HAND and (payload[0] == "left") != (side_target == 0.0)
        object_class = self.classes.get(payload[0], -1) if kind == OBJECT else -1
        return make_example(self.image(frame), self.Ks[frame], kind, payload[1], mirrored, size, rng,
                            object_class=object_class, side_target=side_target if kind == HAND else -1.0,
                            object_mask=self.object_mask(frame) if kind == OBJECT else None)


def hand_picks(frames: SyntheticFrames, count: int, left_share: float, rng) -> list:
    """`count` hand items drawn at random: with `left_share` in (0, 1) that share of them (rounded) left hands,
    the rest right hands; with 0 every hand equally likely (the splits' own share, about 42 % left). Left hands
    are the scenes' second hand (the second grasping hand, the hand overlapping the first) and the harder ones."""
    if not 0.0 < left_share < 1.0 or not frames.left_hands or not frames.right_hands:
        return list(rng.choice(frames.hands, count))
    lefts = int(round(count * left_share))
    return list(rng.choice(frames.left_hands, lefts)) + list(rng.choice(frames.right_hands, count - lefts))


def set_train_mode(model: torch.nn.Module, freeze_norm: bool) -> None:
    """model.train(), with every batch norm left in eval mode when `freeze_norm`."""
    model.train()
    if freeze_norm:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def lr_at(step: int, base: float, warmup: int, total: int, progress: float | None = None) -> float:
    """Linear warm-up over `warmup` steps, then cosine from `base` to 0 at `total` steps, or, when
    `progress` in [0, 1] is given (a wall-clock budget), at progress 1."""
    if step < warmup:
        return base * (step + 1) / warmup
    if progress is None:
        progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def evaluate_heldout(model, frames: SyntheticFrames, size: int, limit: int = 0, batch: int = 64,
                     freeze_norm: bool = False) -> dict:
    """Ground-truth crops of the held-out frames: mpjpe_mm (root-relative, true wrist depth), uv_px (2D,
    crop px), depth_mm (relative-depth error), object_mm (object points, true centre depth), object_uv_px;
    whole-frame crops (coarse pass): frame_mpjpe_mm, frame_uv_px (hands), presence_acc (hands and object);
    object_class_acc (object and frame crops); side_acc: hands whose crop, mirrored the wrong way round, has
    the lower right-hand presence (the Estimator's side check); with a segmentation head, object crops with a
    mask: object_mask_iou (cells whose object share is over a half, against cells whose background
    probability is under a half) and mask_class_acc (the class with the most probability over those cells)."""
    from hand_object_pose.models.hand_heatmap.model import soft_argmax

    model.eval()
    errors = {k: [] for k in ("mpjpe_mm", "uv_px", "depth_mm", "object_mm", "object_uv_px", "frame_mpjpe_mm",
                              "frame_uv_px", "presence_acc", "object_class_acc", "side_acc", "object_mask_iou",
                              "mask_class_acc")}
    items = frames.hands[:limit or None] + frames.objects[:(limit // 3) or None] + frames.frames[:(limit // 3) or None]
    for start in range(0, len(items), batch):
        examples = [frames.example(i, size) for i in items[start:start + batch]]
        data = collate_examples(examples)
        logits, depth, presence, object_class, segmentation = model(data["image"])
        uv, rel, _ = soft_argmax(logits, depth, size)
        if segmentation is not None:
            _segmentation_metrics(segmentation, data, errors)
        for e, u_all, r_all, pres, cls in zip(examples, uv.numpy(), rel.numpy(), torch.sigmoid(presence).numpy(),
                                              object_class.argmax(-1).numpy()):
            if e.object_class >= 0:
                errors["object_class_acc"].append(float(cls == e.object_class))
            channels = KIND_CHANNELS[e.kind]
            u, r = u_all[channels].astype(np.float64), r_all[channels].astype(np.float64)
            roots = group_roots(e.kind)
            gt = e.points_cam.astype(np.float64)
            pred = lift_crop_points(u, r, e.affine, e.K, gt[roots, 2])  # each point at its true root depth
            if e.kind == FRAME:
                errors["presence_acc"].append(float(np.mean((pres >= 0.5) == (e.presence >= 0.5))))
            for first, count in ((0, 21), (21, 21)) if e.kind == FRAME else ((0, len(u)),):
                part = slice(first, first + count)
                if not e.valid[part].all():
                    continue
                root = roots[first]
                err3d = np.linalg.norm((pred[part] - pred[root]) - (gt[part] - gt[root]), axis=1).mean() * 1000.0
                err2d = np.linalg.norm(u[part] - e.uv[part], axis=1).mean()
                if e.kind == HAND:
                    errors["mpjpe_mm"].append(err3d)
                    errors["uv_px"].append(err2d)
                    errors["depth_mm"].append(np.abs(r - e.rel_depth).mean() * 1000.0)
                elif e.kind == OBJECT:
                    errors["object_mm"].append(np.linalg.norm(pred - gt, axis=1).mean() * 1000.0)
                    errors["object_uv_px"].append(err2d)
                else:
                    errors["frame_mpjpe_mm"].append(err3d)
                    errors["frame_uv_px"].append(err2d)
    hands = frames.hands[:limit or None]
    for start in range(0, len(hands), batch):
        chosen = hands[start:start + batch]
        both = collate_examples([frames.example(i, size, side_target=t) for t in (1.0, 0.0) for i in chosen])
        right_hand = model(both["image"])[2][:, 0].reshape(2, len(chosen))
        errors["side_acc"] += (right_hand[0] > right_hand[1]).float().tolist()
    set_train_mode(model, freeze_norm)
    return {k: float(np.mean(v)) if v else float("nan") for k, v in errors.items()}


def _segmentation_metrics(segmentation: torch.Tensor, data: dict, errors: dict) -> None:
    """Appends object_mask_iou and mask_class_acc (evaluate_heldout) of the batch's masked object crops."""
    from .tasks.hand_heatmap import segmentation_targets

    rows = (data["object_mask_valid"] & (data["object_class"] >= 0)).nonzero().flatten()
    if not len(rows):
        return
    prob = torch.softmax(segmentation[rows].float(), dim=1)
    target = segmentation_targets(data["object_mask"][rows], data["object_class"][rows], prob.shape[1] - 1,
                                  prob.shape[-1])
    truth, found = target[:, 0] < 0.5, prob[:, 0] < 0.5
    union = (truth | found).flatten(1).sum(1).clamp_min(1)
    errors["object_mask_iou"] += ((truth & found).flatten(1).sum(1) / union).tolist()
    votes = (prob[:, 1:] * found[:, None]).sum(dim=(2, 3))
    errors["mask_class_acc"] += (votes.argmax(1) == data["object_class"][rows]).float().tolist()


def overfit_check(model, frames: SyntheticFrames, size: int, count: int, steps: int, lr: float, amp: bool) -> float:
    """Train on `count` fixed hand crops (no augmentation) for `steps` steps; prints the 2D error (crop px)
    every 10 steps and returns the last one."""
    from hand_object_pose.models.hand_heatmap.model import soft_argmax
    from .tasks.hand_heatmap import heatmap_loss

    data = collate_examples([frames.example(i, size) for i in frames.hands[:count]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    error = float("nan")
    start = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, lr, 50, steps)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            losses = heatmap_loss(*model(data["image"]), data, size)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        if (step + 1) % 10 == 0 or step == 0:
            model.eval()
            with torch.no_grad():
                uv, _, _ = soft_argmax(*model(data["image"])[:2], size)
            model.train()
            error = float((uv[:, :21] - data["uv"][:, :21]).norm(dim=-1).mean())
            print(f"overfit step {step + 1:4d}: loss {float(losses['total'].detach()):.3f}, 2D error {error:.2f} px "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.training.hand_heatmap_run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--overfit", type=int, default=0, help="the N-crop overfit check instead of training")
    parser.add_argument("--steps", type=int, default=300, help="steps of the overfit check")
    args = parser.parse_args(argv)

    experiment = load_experiment(args.config, tuple(args.overrides))
    options = {**DEFAULTS, **experiment.task}
    torch.set_num_threads(int(options["threads"]))
    train_cfg = experiment.train
    task = build_task(experiment.model, experiment.model_overrides, experiment.augmentation,
                      {k: v for k, v in experiment.task.items() if k in ("initial_weights", "depth_weight",
                                                                          "object_weight", "frame_weight",
                                                                          "side_weight", "backbone_init",
                                                                          "segmentation_weight")})
    size = task.input_size
    roots = experiment.dataset["train"].get("roots") or [experiment.dataset["train"]["root"]]
    torch.manual_seed(train_cfg.seed)
    # channels-last convolutions: 18 % faster bf16 steps on this CPU (0.18 vs 0.22 s at batch 32, 2 threads).
    model = task.build_model().to(memory_format=torch.channels_last)
    freeze_norm = bool(options["freeze_norm"])
    set_train_mode(model, freeze_norm)

    if args.overfit:
        frames = SyntheticFrames(roots[:1], options["min_visible_joints"])
        final = overfit_check(model, frames, size, args.overfit, args.steps, train_cfg.lr, train_cfg.amp)
        verdict = "PASS" if final < 5.0 else "FAIL"
        print(f"overfit check ({args.overfit} crops, {args.steps} steps): final 2D error {final:.2f} px -> {verdict} "
              "(needs < 5 px)")
        return 0 if final < 5.0 else 1

    t0 = time.perf_counter()
    object_ids = tuple(task.model_config.object_ids)
    frames = SyntheticFrames(roots, options["min_visible_joints"], object_ids)
    val = SyntheticFrames([experiment.dataset["val"]["root"]], options["min_visible_joints"], object_ids) \
        if experiment.dataset.get("val") else None
    print(f"data: {len(frames.jpegs)} frames, {len(frames.hands)} hands, {len(frames.objects)} objects "
          f"(held out: {len(val.hands) if val else 0} hands) loaded in {time.perf_counter() - t0:.0f} s", flush=True)

    optimizer = torch.optim.AdamW(task.parameter_groups(model, train_cfg.lr), lr=train_cfg.lr,
                                  weight_decay=train_cfg.weight_decay)
    out = Path(train_cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = 0
    elapsed = 0.0
    if not args.no_resume and (out / LATEST).is_file():
        state = load_checkpoint(out / LATEST)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state.get("elapsed_s", 0.0))
        restore_rng_state(state["rng"])
        print(f"resumed from {out / LATEST} at step {step} ({elapsed / 60:.1f} min trained)", flush=True)

    def save(reason: str) -> None:
        save_checkpoint(out / LATEST, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "epoch": 0,
            "elapsed_s": elapsed, "rng": rng_state(), "task": task.name,
            "config": {"model": experiment.model, "train": dataclasses.asdict(train_cfg), "task": options}})
        print(f"checkpoint at step {step} ({reason})", flush=True)

    stop = {"flag": False}

    def on_signal(signum, _frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    writer = None
    if train_cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out))
    bar = None
    if train_cfg.progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=options["steps"], initial=step, unit="step", file=sys.stderr, mininterval=30)
    total = int(options["steps"])
    budget_s = 60.0 * float(options.get("budget_minutes") or 0.0)  # > 0: the schedule runs on training time
    last_save = time.perf_counter()
    if step == 0 and val is not None:
        metrics = evaluate_heldout(model, val, size, options["eval_limit"], freeze_norm=freeze_norm)
        with open(out / "heldout.jsonl", "a") as log:
            log.write(json.dumps({"step": 0, "minutes": 0.0, **metrics}) + "\n")
    def finished() -> bool:
        return elapsed >= budget_s if budget_s else step >= total

    while not finished() and not stop["flag"]:
        tick = time.perf_counter()
        rng = np.random.default_rng([train_cfg.seed, step])
        picks = hand_picks(frames, options["hand_crops"], float(options["left_hand_share"]), rng)
        if frames.objects and options["object_crops"]:
            picks += list(rng.choice(frames.objects, options["object_crops"]))
        if options["frame_crops"]:
            picks += list(rng.choice(frames.frames, options["frame_crops"]))
        sides = int(options["side_crops"])
        examples = [frames.example(i, size, rng, side_target=1.0 if sides else -1.0) for i in picks]
        if sides:   # hands mirrored the wrong way round: handedness
            examples += [frames.example(i, size, rng, side_target=0.0) for i in hand_picks(frames, sides, 0.0, rng)]
        batch = collate_examples(examples)
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        lr = lr_at(step, train_cfg.lr, options["warmup_steps"], total, elapsed / budget_s if budget_s else None)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=train_cfg.amp):
            losses = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if train_cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        optimizer.step()
        step += 1
        elapsed += time.perf_counter() - tick
        if bar:
            bar.update()
        if writer and step % train_cfg.log_every_steps == 0:
            for k, v in losses.items():
                writer.add_scalar(f"train/{k}", float(v.detach()), step)
            writer.add_scalar("train/lr", lr, step)
            writer.add_scalar("train/step_s", time.perf_counter() - tick, step)
        if val is not None and (step % options["eval_every_steps"] == 0 or finished()):
            metrics = evaluate_heldout(model, val, size, options["eval_limit"], freeze_norm=freeze_norm)
            record = {"step": step, "minutes": round(elapsed / 60, 2), "loss": float(losses["total"].detach()), **metrics}
            with open(out / "heldout.jsonl", "a") as log:
                log.write(json.dumps(record) + "\n")
            print("heldout " + json.dumps(record), flush=True)
            if writer:
                for k, v in metrics.items():
                    writer.add_scalar(f"heldout/{k}", v, step)
        if time.perf_counter() - last_save > 60 * float(options["checkpoint_minutes"]):
            save("periodic")
            last_save = time.perf_counter()
    save("stopped by signal" if stop["flag"] else "end")
    if bar:
        bar.close()
    if writer:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
