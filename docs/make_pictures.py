"""Make the scene pictures in docs/: what the head camera sees and an overview of the robot,
for a few conditions (two training rack poses with each grasp, and a visual-test scene).

    . scripts/env.sh && python docs/make_pictures.py

Writes docs/head_camera.png (the policy's view at 240x240, the paper's input size, with
shadows and multisampling on for readability) and docs/overview.png (a free camera looking at
the robot, the rack and the table from the front left). Each tile is labelled with its
condition.
"""

import dataclasses
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import cv2  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from gps_sim import HangerEnv, load_conditions, load_task_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONDITIONS = (("hanger_conditions.yaml", "train", "train_near_right_low_g0"),
              ("hanger_conditions.yaml", "train", "train_far_left_low_g1"),
              ("hanger_conditions.yaml", "spatial_test", "spatial_far_right_g1"),
              ("visual_test_conditions.yaml", "visual_test", "visual_distractors_g0"))
HEAD_SIZE = 240
OVERVIEW_SIZE = (360, 480)  # height, width
OVERVIEW_VIEW = {"lookat": (0.5, -0.05, 0.85), "distance": 1.6, "azimuth": 140.0,
                 "elevation": -22.0}


def load_env() -> HangerEnv:
    """One environment over the chosen conditions, with the nicer (slower) rendering on."""
    by_name = {}
    for file_name, section, name in CONDITIONS:
        for condition in load_conditions(ROOT / "config" / file_name, section):
            if condition.name == name:
                by_name[name] = condition
    task = dataclasses.replace(load_task_config(ROOT / "config" / "hanger_conditions.yaml"),
                               render_shadows=True, render_multisampling=True)
    return HangerEnv([by_name[name] for _, _, name in CONDITIONS], task,
                     render_observations=False)


def overview(env: HangerEnv) -> np.ndarray:
    """The current scene from a free camera. HangerEnv renders only its head camera, so this
    draws the environment's own model and data with a free mujoco.MjvCamera."""
    model, data = env._rt.model, env._data
    height, width = OVERVIEW_SIZE
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    for key, value in OVERVIEW_VIEW.items():
        setattr(camera, key, value)
    with mujoco.Renderer(model, height=height, width=width) as renderer:
        renderer.update_scene(data, camera=camera)
        return renderer.render().copy()


def label(image: np.ndarray, text: str) -> np.ndarray:
    """The image under a dark band with `text`, so the label hides none of the view."""
    band = np.zeros((20, image.shape[1], 3), np.uint8)
    cv2.putText(band, text, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def save(path: Path, rows: list[list[np.ndarray]]) -> None:
    grid = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path.relative_to(ROOT)} ({grid.shape[1]}x{grid.shape[0]}, "
          f"{path.stat().st_size // 1024} KiB)")


def main() -> None:
    env = load_env()
    heads, overviews = [], []
    for _, _, name in CONDITIONS:
        env.reset(name)
        heads.append(label(env.render(HEAD_SIZE), name))
        overviews.append(label(overview(env), name))
    env.close()
    save(DOCS / "head_camera.png", [heads[:2], heads[2:]])
    save(DOCS / "overview.png", [overviews[:2], overviews[2:]])


if __name__ == "__main__":
    main()
