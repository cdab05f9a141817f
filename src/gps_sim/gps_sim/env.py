"""In-process MuJoCo environment of the coat-hanger task (no ROS).

The right arm is driven by joint torques held for one control period (dt = 0.05 s, 25 physics
steps of 2 ms, as the PR2's 1 kHz loop holds a 20 Hz policy's action). The left arm holds the
rack; its PD controller tracks a joint target found by inverse kinematics for the condition's rack
pose. State and observation follow gps_controller.layout.PR2_RIGHT_ARM; all points, velocities
and Jacobians are expressed in the robot (torso_lift_link) frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import mujoco
import numpy as np

from gps_controller.layout import (LEFT_ARM_JOINTS, PR2_RIGHT_ARM, RIGHT_ARM_EFFORT_LIMITS,
                                   RIGHT_ARM_JOINTS)
from gps_sim.conditions import (AppearanceRandomisation, HangerCondition, HangerTaskConfig,
                                SceneVariation, load_conditions, load_task_config)
from gps_sim.ik import IkResult, solve_site_positions
from gps_sim.robot import ArmIndex, named_id
from gps_sim.scene import HANGER_BODY, ROBOT_BODY, SceneLook, build_model
from gps_sim.success import Bar, HangCheck, HookGeometry, check_hang

EE_SITES = ("hook_tip", "hanger_near_end", "hanger_far_end")
"""The hook's tip and both ends of the hanger's shoulders: 30 cm apart, so matching the three
points fixes the hanger's orientation to within a few degrees."""
TARGET_SITES = ("target_hook_tip", "target_hanger_near_end", "target_hanger_far_end")
TOOL_BODY = "r_gripper_tool_frame"
"""The right gripper's tool frame: the EE points are rigid in it for a given grasp."""
RACK_CENTRE_SITE = "rack_bar_centre"
RACK_BODY = "rack"
BAR_GEOM = "rack_bar"
CAMERA = "head_camera"
MULTISAMPLES = 4
GRASP_SITE_PREFIX = "grasp_"
RACK_IK_TOLERANCE = 1e-3
"""Largest rack-placement IK error (m) accepted before a rack pose counts as out of reach."""
APPEARANCE_STREAM = 1
"""A reset's random look is drawn from numpy's seed sequence [seed, APPEARANCE_STREAM], so it
never shifts the start-pose noise drawn from the same seed."""
RACK_IK_STAGES = 4


@dataclass(frozen=True)
class Observation:
    """What the policy sees: head-camera image (H x W x 3 uint8, None when not rendered) and the
    configuration [q, qdot, p_ee, pdot_ee] in the robot frame (layout.config_blocks)."""

    image: np.ndarray | None
    config: np.ndarray


@dataclass(frozen=True)
class JointStateReading:
    """Both arms' joints as sensor_msgs/JointState carries them (right arm first)."""

    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


@dataclass(frozen=True)
class _SceneRuntime:
    """A compiled model with the ids the environment needs and its renderers by image size."""

    model: mujoco.MjModel
    right: ArmIndex
    left: ArmIndex
    ee_sites: list[int]
    target_sites: list[int]
    rack_centre_site: int
    rack_body: int
    hanger_body: int
    tool_body: int
    bar_geom: int
    grasp_sites: list[int]
    hook: HookGeometry
    robot_pos: np.ndarray
    robot_rot: np.ndarray
    look: SceneLook
    renderers: dict[int, mujoco.Renderer]

    @classmethod
    def compile(cls, scene: SceneVariation, task: HangerTaskConfig) -> _SceneRuntime:
        model = build_model(scene, task.physics_dt)
        model.vis.quality.offsamples = MULTISAMPLES if task.render_multisampling else 0
        site = partial(named_id, model, mujoco.mjtObj.mjOBJ_SITE)
        body = partial(named_id, model, mujoco.mjtObj.mjOBJ_BODY)
        robot = body(ROBOT_BODY)
        if model.body_parentid[robot] != 0 or model.body_jntnum[robot] != 0:
            raise ValueError(f"{ROBOT_BODY!r} must be a fixed child of the world")
        robot_rot = np.zeros(9)
        mujoco.mju_quat2Mat(robot_rot, model.body_quat[robot])
        grasp_names = sorted(name for name in _site_names(model)
                             if name.startswith(GRASP_SITE_PREFIX))
        return cls(
            model=model,
            right=ArmIndex.from_model(model, RIGHT_ARM_JOINTS),
            left=ArmIndex.from_model(model, LEFT_ARM_JOINTS),
            ee_sites=[site(n) for n in EE_SITES],
            target_sites=[site(n) for n in TARGET_SITES],
            rack_centre_site=site(RACK_CENTRE_SITE),
            rack_body=body(RACK_BODY),
            hanger_body=body(HANGER_BODY),
            tool_body=body(TOOL_BODY),
            bar_geom=named_id(model, mujoco.mjtObj.mjOBJ_GEOM, BAR_GEOM),
            grasp_sites=[site(n) for n in grasp_names],
            hook=HookGeometry.from_model(model),
            robot_pos=model.body_pos[robot].copy(),
            robot_rot=robot_rot.reshape(3, 3),
            look=SceneLook.of(model),
            renderers={},
        )


class HangerEnv:
    """The hanger task: reset to a condition, apply torques, read state, observation, success."""

    layout = PR2_RIGHT_ARM

    def __init__(self, conditions: Sequence[HangerCondition],
                 task: HangerTaskConfig = HangerTaskConfig(),
                 render_observations: bool = True) -> None:
        if not conditions:
            raise ValueError("HangerEnv needs at least one condition")
        self.conditions = tuple(conditions)
        self.task = task
        self.render_observations = render_observations
        self._runtimes: dict[SceneVariation, _SceneRuntime] = {}
        self._check_grasps()
        self._rt: _SceneRuntime | None = None
        self._data: mujoco.MjData | None = None
        self.condition: HangerCondition | None = None
        self.step_index = 0

    @classmethod
    def from_yaml(cls, conditions_path: str | Path, section: str,
                  task_path: str | Path | None = None, render_observations: bool = True
                  ) -> HangerEnv:
        """Conditions from `section` of `conditions_path`; the task section from `task_path`
        (default: the same file; defaults when that file has none)."""
        conditions = load_conditions(conditions_path, section)
        task = load_task_config(task_path if task_path is not None else conditions_path)
        return cls(conditions, task, render_observations)

    # Episode control -------------------------------------------------------------------------

    def reset(self, condition: int | str, seed: int = 0, rack_offset=None,
              rack_yaw_offset: float = 0.0,
              appearance: AppearanceRandomisation | None = None
              ) -> tuple[np.ndarray, Observation]:
        """Start an episode in `condition` (index or name); `seed` drives the start-pose noise
        and the random look. `rack_offset` (m, robot frame) moves this episode's rack from the
        condition's position: the training samples' rack jitter
        (gps_trainer.train_gps.GpsRunConfig.rack_jitter); `rack_yaw_offset` (rad) turns it from
        the condition's yaw (pose pre-training's random rack poses). `appearance` draws this
        episode's colours and lights around the condition's (training data only; None: the
        condition's look). Raises ValueError for bad offsets and a rack pose out of the left
        arm's reach."""
        self.condition = self._lookup(condition)
        if rack_offset is not None:
            try:
                offset = np.asarray(rack_offset, dtype=float)
            except (TypeError, ValueError):
                offset = np.empty(0)
            if offset.shape != (3,) or not np.all(np.isfinite(offset)):
                raise ValueError(f"rack_offset must be 3 finite numbers (m), got {rack_offset!r}")
            self.condition = replace(self.condition, rack_position=tuple(
                float(v) for v in np.asarray(self.condition.rack_position) + offset))
        if isinstance(rack_yaw_offset, bool) or not isinstance(
                rack_yaw_offset, (int, float, np.floating, np.integer)) \
                or not np.isfinite(rack_yaw_offset):
            raise ValueError(f"rack_yaw_offset must be a finite number (rad), "
                             f"got {rack_yaw_offset!r}")
        if rack_yaw_offset:
            self.condition = replace(self.condition,
                                     rack_yaw=float(self.condition.rack_yaw + rack_yaw_offset))
        self._rt = self._runtime(self.condition.scene)
        model, rt = self._rt.model, self._rt
        self._place_hanger(self.condition.grasp)
        rt.look.apply(model, appearance, np.random.default_rng([seed, APPEARANCE_STREAM]))
        self._data = mujoco.MjData(model)
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, self.task.initial_joint_noise_std, len(RIGHT_ARM_JOINTS))
        self._data.qpos[rt.right.qpos_adr] = rt.right.clip_to_range(
            np.asarray(self.task.initial_right_arm_q[self.condition.grasp]) + noise)
        q_left = self._solve_rack_ik(self.condition.rack_position, self.condition.rack_yaw,
                                     np.asarray(self.task.left_arm_ik_seed))
        self._data.qpos[rt.left.qpos_adr] = q_left
        self._data.ctrl[rt.left.actuator_ids] = q_left
        mujoco.mj_forward(model, self._data)
        self.step_index = 0
        return self.state(), self.observation()

    def step(self, torque) -> tuple[np.ndarray, Observation]:
        """Apply right-arm torques (N m, RIGHT_ARM_JOINTS order, clipped to the effort limits)
        for one control period; returns the next state and observation."""
        data = self._require_episode()
        torque = _checked_torque(torque)
        data.ctrl[self._rt.right.actuator_ids] = np.clip(
            torque, -RIGHT_ARM_EFFORT_LIMITS, RIGHT_ARM_EFFORT_LIMITS)
        mujoco.mj_step(self._rt.model, data, nstep=self.task.substeps)
        mujoco.mj_forward(self._rt.model, data)
        if not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))):
            raise RuntimeError("simulation diverged (non-finite joint state)")
        self.step_index += 1
        return self.state(), self.observation()

    def set_right_arm_state(self, q, qdot=None) -> None:
        """Place the right arm at joint angles `q` (velocities `qdot`, default zero) without
        simulating, e.g. to hand-place a configuration in a test or a demonstration."""
        data = self._require_episode()
        q = np.asarray(q, float)
        qdot = np.zeros_like(q) if qdot is None else np.asarray(qdot, float)
        n = len(RIGHT_ARM_JOINTS)
        if q.shape != (n,) or qdot.shape != (n,):
            raise ValueError(f"q and qdot must have shape ({n},), got {q.shape} and {qdot.shape}")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qdot))):
            raise ValueError("q and qdot must be finite")
        data.qpos[self._rt.right.qpos_adr] = q
        data.qvel[self._rt.right.dof_adr] = qdot
        mujoco.mj_forward(self._rt.model, data)

    def move_rack(self, position, yaw: float) -> None:
        """Give the left arm's PD controller the joint target that holds the rack at `position`
        (bar centre, robot frame) and `yaw`; the rack moves there over the following steps."""
        data = self._require_episode()
        q_left = self._solve_rack_ik(position, yaw, data.qpos[self._rt.left.qpos_adr],
                                     from_pose=self.rack_pose())
        data.ctrl[self._rt.left.actuator_ids] = q_left

    # Readings --------------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """Simulated time since reset (s)."""
        return float(self._require_episode().time)

    @property
    def n_grasps(self) -> int:
        return len(self._runtime(SceneVariation()).grasp_sites)

    def state(self) -> np.ndarray:
        """x = [q, qdot, p_ee - p_target, pdot_ee] (layout.state_blocks)."""
        q, qdot = self._right_arm_state()
        return self.layout.assemble_state(q, qdot, self.ee_points(), self.ee_velocities(),
                                          self.target_points())

    def observation(self) -> Observation:
        """The policy's input: image (if rendering observations) and configuration."""
        q, qdot = self._right_arm_state()
        config = self.layout.assemble_config(q, qdot, self.ee_points(), self.ee_velocities())
        image = self.render() if self.render_observations else None
        return Observation(image=image, config=config)

    def ee_points(self) -> np.ndarray:
        """The 3 end-effector points (hook tip, hanger neck, hanger bottom), robot frame, 3 x 3."""
        data = self._require_episode()
        return self._to_robot(data.site_xpos[self._rt.ee_sites])

    def ee_points_in_tool(self) -> np.ndarray:
        """The EE points in the tool frame (TOOL_BODY), 3 x 3: what a controller needs, with the
        arm's kinematics, to compute ee_points() from joint angles for the current grasp."""
        data = self._require_episode()
        tool = self._rt.tool_body
        rotation = data.xmat[tool].reshape(3, 3)
        return (data.site_xpos[self._rt.ee_sites] - data.xpos[tool]) @ rotation

    def target_points(self) -> np.ndarray:
        """The 3 target points on the rack matching the EE points when hung, robot frame, 3 x 3."""
        data = self._require_episode()
        return self._to_robot(data.site_xpos[self._rt.target_sites])

    def ee_jacobians(self) -> np.ndarray:
        """d p_ee / d q of each EE point w.r.t. the right-arm joints, robot frame, 3 x 3 x 7."""
        data = self._require_episode()
        rot = self._robot_rotation()
        jacp = np.zeros((3, self._rt.model.nv))
        jacobians = np.zeros((len(EE_SITES), 3, len(RIGHT_ARM_JOINTS)))
        for k, site_id in enumerate(self._rt.ee_sites):
            mujoco.mj_jacSite(self._rt.model, data, jacp, None, site_id)
            jacobians[k] = rot.T @ jacp[:, self._rt.right.dof_adr]
        return jacobians

    def ee_velocities(self) -> np.ndarray:
        """Velocities of the EE points (J qdot), robot frame, 3 x 3."""
        _, qdot = self._right_arm_state()
        return self.ee_jacobians() @ qdot

    def rack_pose(self) -> tuple[np.ndarray, float]:
        """Measured rack pose: bar centre (robot frame) and yaw about the robot's z axis."""
        data = self._require_episode()
        centre = self._to_robot(data.site_xpos[[self._rt.rack_centre_site]])[0]
        x_axis = self._robot_rotation().T @ data.xmat[self._rt.rack_body].reshape(3, 3)[:, 0]
        return centre, float(np.arctan2(x_axis[1], x_axis[0]))

    def rack_bar(self) -> Bar:
        """The bar's axis in the robot frame; its direction, the rack frame's y axis, points
        from the free end towards the post."""
        data = self._require_episode()
        rot = self._robot_rotation()
        centre = self._to_robot(data.geom_xpos[[self._rt.bar_geom]])[0]
        axis = rot.T @ data.xmat[self._rt.rack_body].reshape(3, 3)[:, 1]
        return Bar(centre=centre, axis=axis,
                   half_length=float(self._rt.model.geom_size[self._rt.bar_geom, 1]))

    def hang_check(self) -> HangCheck:
        """The success test's four conditions on the current state (see gps_sim.success)."""
        data = self._require_episode()
        rot = self._robot_rotation()
        hanger_pos = self._to_robot(data.xpos[[self._rt.hanger_body]])[0]
        hanger_rot = rot.T @ data.xmat[self._rt.hanger_body].reshape(3, 3)
        return check_hang(hanger_pos, hanger_rot, self._rt.hook, self.rack_bar(),
                          up=np.array([0.0, 0.0, 1.0]))

    def success(self) -> bool:
        """Whether the hook hangs over the bar now (gps_sim.success); judged at episode end."""
        return self.hang_check().success

    def joint_state(self) -> JointStateReading:
        """Positions, velocities and applied efforts of both arms, for a JointState message."""
        data = self._require_episode()
        right, left = self._rt.right, self._rt.left
        qpos_adr = np.concatenate([right.qpos_adr, left.qpos_adr])
        dof_adr = np.concatenate([right.dof_adr, left.dof_adr])
        actuators = np.concatenate([right.actuator_ids, left.actuator_ids])
        return JointStateReading(
            names=RIGHT_ARM_JOINTS + LEFT_ARM_JOINTS,
            position=data.qpos[qpos_adr].copy(),
            velocity=data.qvel[dof_adr].copy(),
            effort=data.actuator_force[actuators].copy(),
        )

    def render(self, size: int | None = None) -> np.ndarray:
        """Head-camera RGB image, size x size x 3 uint8 (default: the task's image_size)."""
        data = self._require_episode()
        size = self.task.image_size if size is None else size
        renderer = self._renderer(size)
        renderer.update_scene(data, camera=CAMERA)
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self.task.render_shadows
        return renderer.render().copy()

    # Tools for controllers and demonstrations ------------------------------------------------

    def right_arm_ik(self, points, q_init=None) -> IkResult:
        """Right-arm joint angles that put the EE points on `points` (3 x 3, robot frame),
        starting from `q_init` (default: the current joint angles). Does not move the arm."""
        data = self._require_episode()
        scratch = mujoco.MjData(self._rt.model)
        scratch.qpos[:] = data.qpos
        q_start = data.qpos[self._rt.right.qpos_adr] if q_init is None else q_init
        return solve_site_positions(self._rt.model, scratch, self._rt.right, self._rt.ee_sites,
                                    self._to_world(np.asarray(points, float)), q_start)

    def right_arm_mass_matrix(self) -> np.ndarray:
        """Joint-space inertia of the right arm (7 x 7, armature included)."""
        data = self._require_episode()
        full = np.zeros((self._rt.model.nv, self._rt.model.nv))
        mujoco.mj_fullM(self._rt.model, data, full)
        return full[np.ix_(self._rt.right.dof_adr, self._rt.right.dof_adr)]

    def right_arm_bias_torque(self) -> np.ndarray:
        """Torque that cancels the right arm's gravity, Coriolis and passive (joint damping,
        counterbalance) forces in the current state."""
        data = self._require_episode()
        dofs = self._rt.right.dof_adr
        return data.qfrc_bias[dofs] - data.qfrc_passive[dofs]

    def close(self) -> None:
        """Free the renderers' GL contexts."""
        for runtime in self._runtimes.values():
            for renderer in runtime.renderers.values():
                renderer.close()
            runtime.renderers.clear()

    # Internals -------------------------------------------------------------------------------

    def _lookup(self, condition: int | str) -> HangerCondition:
        if isinstance(condition, bool) or not isinstance(condition, (int, np.integer, str)):
            raise ValueError(f"condition must be an index or a name, got {condition!r}")
        if isinstance(condition, str):
            for candidate in self.conditions:
                if candidate.name == condition:
                    return candidate
            raise ValueError(f"unknown condition {condition!r}; known: "
                             f"{[c.name for c in self.conditions]}")
        if not 0 <= condition < len(self.conditions):
            raise ValueError(f"condition index {condition} out of range "
                             f"0..{len(self.conditions) - 1}")
        return self.conditions[condition]

    def _runtime(self, scene: SceneVariation) -> _SceneRuntime:
        if scene not in self._runtimes:
            self._runtimes[scene] = _SceneRuntime.compile(scene, self.task)
        return self._runtimes[scene]

    def _check_grasps(self) -> None:
        n_grasps = self.n_grasps
        if len(self.task.initial_right_arm_q) < n_grasps:
            raise ValueError(f"task.initial_right_arm_q: {len(self.task.initial_right_arm_q)} "
                             f"start pose(s) for {n_grasps} grasps")
        for condition in self.conditions:
            if condition.grasp >= n_grasps:
                raise ValueError(f"condition {condition.name!r}: grasp {condition.grasp} does "
                                 f"not exist; the model has grasps 0..{n_grasps - 1}")

    def _place_hanger(self, grasp: int) -> None:
        """Pose the hanger in the gripper so that grasp site `grasp` sits on the tool frame."""
        model, site_id = self._rt.model, self._rt.grasp_sites[grasp]
        inverse = np.zeros(4)
        mujoco.mju_negQuat(inverse, model.site_quat[site_id])
        position = np.zeros(3)
        mujoco.mju_rotVecQuat(position, -model.site_pos[site_id], inverse)
        model.body_pos[self._rt.hanger_body] = position
        model.body_quat[self._rt.hanger_body] = inverse

    def _solve_rack_ik(self, position, yaw: float, q_init: np.ndarray,
                       from_pose: tuple[np.ndarray, float] | None = None) -> np.ndarray:
        """Left-arm joints holding the rack at (position, yaw). The IK follows the rack pose
        in RACK_IK_STAGES steps from `from_pose` (the pose q_init holds; default: nominal pose)
        so that each solve starts close to its answer and does not stall in a local minimum."""
        position = np.asarray(position, float)
        if position.shape != (3,) or not np.all(np.isfinite(position)) or not np.isfinite(yaw):
            raise ValueError(f"rack position must be 3 finite numbers and yaw finite, "
                             f"got {position!r}, {yaw!r}")
        start_position, start_yaw = from_pose or (np.asarray(self.task.rack_nominal_position), 0.0)
        model, rt = self._rt.model, self._rt
        scratch = mujoco.MjData(model)
        scratch.qpos[:] = self._require_episode().qpos
        q = np.asarray(q_init, float)
        for fraction in np.linspace(0.0, 1.0, RACK_IK_STAGES + 1):
            stage_position = start_position + fraction * (position - start_position)
            stage_yaw = start_yaw + fraction * (yaw - start_yaw)
            targets = self._to_world(self._rack_points(stage_position, stage_yaw))
            result = solve_site_positions(model, scratch, rt.left, rt.target_sites, targets, q)
            q = result.q
        if result.max_error > RACK_IK_TOLERANCE:
            raise ValueError(f"rack pose {position.tolist()}, yaw {yaw} is out of the left arm's "
                             f"reach (IK error {1000 * result.max_error:.1f} mm)")
        return q

    def _rack_points(self, position: np.ndarray, yaw: float) -> np.ndarray:
        """Robot-frame positions of the rack's target sites for a rack pose."""
        model, rt = self._rt.model, self._rt
        local = model.site_pos[rt.target_sites] - model.site_pos[rt.rack_centre_site]
        cos, sin = np.cos(yaw), np.sin(yaw)
        yaw_rot = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
        return position + local @ yaw_rot.T

    def _renderer(self, size: int) -> mujoco.Renderer:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"image size must be a positive integer, got {size!r}")
        limit = min(self._rt.model.vis.global_.offwidth, self._rt.model.vis.global_.offheight)
        if size > limit:
            raise ValueError(f"image size {size} exceeds the offscreen buffer ({limit})")
        if size not in self._rt.renderers:
            self._rt.renderers[size] = mujoco.Renderer(self._rt.model, height=size, width=size)
        return self._rt.renderers[size]

    def _require_episode(self) -> mujoco.MjData:
        if self._data is None:
            raise RuntimeError("call reset(condition) before using the environment")
        return self._data

    def _right_arm_state(self) -> tuple[np.ndarray, np.ndarray]:
        data = self._require_episode()
        return (data.qpos[self._rt.right.qpos_adr].copy(),
                data.qvel[self._rt.right.dof_adr].copy())

    def _robot_rotation(self) -> np.ndarray:
        return self._rt.robot_rot

    def _to_robot(self, points: np.ndarray) -> np.ndarray:
        return (points - self._rt.robot_pos) @ self._rt.robot_rot

    def _to_world(self, points: np.ndarray) -> np.ndarray:
        return points @ self._rt.robot_rot.T + self._rt.robot_pos


def _checked_torque(torque) -> np.ndarray:
    try:
        torque = np.asarray(torque, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"torque must be {len(RIGHT_ARM_JOINTS)} numbers, "
                         f"got {torque!r}") from None
    if torque.shape != (len(RIGHT_ARM_JOINTS),):
        raise ValueError(f"torque must have shape ({len(RIGHT_ARM_JOINTS)},) in "
                         f"RIGHT_ARM_JOINTS order, got shape {torque.shape}")
    if not np.all(np.isfinite(torque)):
        raise ValueError(f"torque must be finite, got {torque.tolist()}")
    return torque


def _site_names(model: mujoco.MjModel) -> list[str]:
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SITE, i) for i in range(model.nsite)]
