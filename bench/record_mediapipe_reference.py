"""Record MediaPipe's own outputs on a few rendered frames, as a test fixture for our runtime.

    .venv/bin/python bench/record_mediapipe_reference.py --mediapipe-python /tmp/mp/bin/python \
        [--out test/fixtures/hand_detector] [--frames 6]

Renders upright stand-in hands with a forearm (`synthetic.upright_hands`, 480x360, seed 17), writes
them as JPEG (quality 95) and runs MediaPipe 0.10.21 (`mp.solutions.hands`, lite models, static image
mode, max 2 hands) from a throwaway venv on the decoded JPEGs. Writes `frame_<i>.jpg` and
`mediapipe_reference.json` (per frame: each hand's 21 landmarks in pixels, handedness label and score
as MediaPipe reports them). `test/hand_detection/test_mediapipe_reference.py` checks that our ONNX
Runtime pipeline reproduces the landmarks; the frames are stored, so a change of the renderer does not
change the fixture.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hand_object_pose.synthetic.upright_hands import UprightConfig, upright_frames  # noqa: E402

CHILD = r"""
import json, sys
import cv2
import mediapipe as mp
out = []
with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=0,
                              min_detection_confidence=0.5) as hands:
    for path in sys.argv[1:]:
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        result = hands.process(rgb)
        found = []
        for lm, side in zip(result.multi_hand_landmarks or [], result.multi_handedness or []):
            found.append({"landmarks_px": [[p.x * w, p.y * h] for p in lm.landmark],
                          "label": side.classification[0].label, "score": side.classification[0].score})
        out.append(found)
print(json.dumps({"version": mp.__version__, "frames": out}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mediapipe-python", required=True)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "test/fixtures/hand_detector"))
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(upright_frames(args.frames, seed=17, config=UprightConfig(image_size=(480, 360)))):
        path = out / f"frame_{i}.jpg"
        cv2.imwrite(str(path), frame.rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(str(path))
    result = subprocess.run([args.mediapipe_python, "-c", CHILD, *paths], capture_output=True, text=True,
                            env=dict(os.environ, GLOG_minloglevel="2"))
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return 1
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["frames"] = [{"file": Path(p).name, "hands": hands} for p, hands in zip(paths, data["frames"])]
    data["settings"] = "mp.solutions.hands(static_image_mode=True, max_num_hands=2, model_complexity=0)"
    (out / "mediapipe_reference.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}: {sum(bool(f['hands']) for f in data['frames'])}/{len(paths)} frames with hands")
    return 0


if __name__ == "__main__":
    sys.exit(main())
