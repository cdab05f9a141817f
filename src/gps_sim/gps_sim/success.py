"""The coat-hanger success test: the hook hangs over the rack bar.

Geometry (hanger frame H: origin at the neck, x along the shoulders, z up the hook stem, y normal
to the hanger's plane). The hook is the stem at x = stem_x, a half circle of radius r around the
curl centre c, and the tip going down at x = tip_x to height tip_end_z. Its enclosure is the
region of the x-z plane the hook closes around:

    stem_x < x < tip_x  and  z > tip_end_z  and  (z <= c_z  or  |(x, z) - c| < r).

The hanger is hung on the bar when all of these hold:
  1. crossing: the bar axis meets the hanger plane at an angle of at least 60 degrees
     (|u . y_H| >= cos 30 deg), so the hook's plane is across the bar;
  2. on the bar: that crossing point lies within the bar's length (|s| <= half length), so the
     hook is over the bar and not beyond its free end;
  3. enclosed: the crossing point, in H's x-z coordinates, is inside the hook's enclosure, i.e.
     the bar's axis is between stem and tip, above the tip's end and under the curl; with the
     bar radius (1 cm) this means the bar is caught by the hook;
  4. upright: H's z axis is within 30 degrees of the robot's up axis, so the hook opens
     downwards and the hanger would stay on the bar if released.
The environment evaluates it on the current state; an episode succeeds when it holds at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

MAX_CROSSING_TILT = np.deg2rad(30.0)
MAX_UPRIGHT_TILT = np.deg2rad(30.0)


@dataclass(frozen=True)
class HookGeometry:
    """The hook's outline in the hanger frame, read from the model's hanger sites."""

    stem_x: float
    tip_x: float
    tip_end_z: float
    centre_x: float
    centre_z: float
    radius: float

    @classmethod
    def from_model(cls, model: mujoco.MjModel) -> HookGeometry:
        neck, tip, centre = (_site_in_hanger(model, name)
                             for name in ("hanger_neck", "hook_tip", "hook_centre"))
        return cls(stem_x=float(neck[0]), tip_x=float(tip[0]), tip_end_z=float(tip[2]),
                   centre_x=float(centre[0]), centre_z=float(centre[2]),
                   radius=float(tip[0] - centre[0]))

    def encloses(self, x: float, z: float) -> bool:
        """Whether point (x, z) of the hanger plane is inside the hook's enclosure."""
        between = self.stem_x < x < self.tip_x and z > self.tip_end_z
        in_curl = np.hypot(x - self.centre_x, z - self.centre_z) < self.radius
        under_curl = z <= self.centre_z or in_curl
        return bool(between and under_curl)


@dataclass(frozen=True)
class Bar:
    """The rack bar's axis: centre point, unit direction, half length (m)."""

    centre: np.ndarray
    axis: np.ndarray
    half_length: float


@dataclass(frozen=True)
class HangCheck:
    """The four conditions of the success test, each on its own for diagnosis."""

    crossing: bool
    on_bar: bool
    enclosed: bool
    upright: bool

    @property
    def success(self) -> bool:
        return self.crossing and self.on_bar and self.enclosed and self.upright

    def describe(self) -> str:
        """'hung', or the failed conditions by name."""
        failed = [name for name in ("crossing", "on_bar", "enclosed", "upright")
                  if not getattr(self, name)]
        return "hung" if not failed else "not hung: fails " + ", ".join(failed)


def check_hang(hanger_pos: np.ndarray, hanger_rot: np.ndarray, hook: HookGeometry, bar: Bar,
               up: np.ndarray) -> HangCheck:
    """Evaluate the success test for the hanger frame (position, 3x3 rotation) and the bar."""
    normal = hanger_rot[:, 1]
    along = float(bar.axis @ normal)
    crossing = abs(along) >= np.cos(MAX_CROSSING_TILT)
    upright = float(hanger_rot[:, 2] @ up) >= np.cos(MAX_UPRIGHT_TILT)
    if abs(along) < 1e-9:
        return HangCheck(crossing=False, on_bar=False, enclosed=False, upright=upright)
    s = float((hanger_pos - bar.centre) @ normal) / along
    crossing_point = hanger_rot.T @ (bar.centre + s * bar.axis - hanger_pos)
    return HangCheck(
        crossing=crossing,
        on_bar=abs(s) <= bar.half_length,
        enclosed=hook.encloses(crossing_point[0], crossing_point[2]),
        upright=upright,
    )


def _site_in_hanger(model: mujoco.MjModel, name: str) -> np.ndarray:
    site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)
    hanger_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "hanger")
    if site_id < 0 or model.site_bodyid[site_id] != hanger_id:
        raise ValueError(f"model needs a site {name!r} on the body 'hanger'")
    return model.site_pos[site_id].copy()
