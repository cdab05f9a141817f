"""The trainer node: guided policy search (gps_trainer.train_gps) with its samples taken over ROS.

Runs the stages of a run preset (pose pre-training, trajectory pre-training with the full-state
network, end-to-end BADMM with the CNN, evaluation of the CNN alone) with the sim or real robot
and the controller node as its robot (gps_trainer.ros_robot): for every sample it pushes the
policy to the controller, resets the scene to the condition, runs the trial and stores the
received sample in the run folder before using it. Killed and started again on the same run
folder it resumes from the last checkpoint and takes the samples already stored.

With evaluate_policy set it trains nothing: it evaluates that policy file alone (mean actions,
as the run's own evaluation does) on the conditions of evaluation_set over the same graph, and
writes the results (as `gps_trainer.evaluation --out` does) to
<run_dir>/policy_evaluation_<set>.json.

Parameters:
  config_file      run preset (e.g. config/hanger_gps_cpu.yaml); ignored when run_dir holds a
                   run (then the overrides below apply only to an evaluation)
  run_dir          the run folder (resumed when it already holds a run)
  conditions_file  overrides the preset's conditions file when not empty
  seed             overrides the preset's seed when >= 0
  trajectory_pretraining_iterations, end_to_end_iterations, evaluation_trials
                   override the preset when > 0
  trial_timeout_s  longest wait for one trial's sample
  evaluate_policy  a policy file (GaussianPolicy.save): evaluate it instead of training
  evaluation_set   its condition set (default: the preset's test set); evaluation_trials
                   trials per condition (default: the preset's)
  evaluation_random_looks
                   a run config: each evaluation trial's colours and lights drawn from its
                   appearance_randomisation (as `gps_trainer.evaluation --random-looks`)
Publishes:
  ~/progress       gps_msgs/TrainingProgress after each iteration
Uses:
  /gps_controller/policy_update, /gps_controller/run_trial, /gps_sim/set_condition,
  /gps_sim/check_task, /head_camera/image_raw (pose pre-training frames)

    ros2 run gps_trainer trainer_node --ros-args -p config_file:=config/hanger_gps_cpu.yaml \\
        -p run_dir:=runs/ros_seed0
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from gps_controller.node_shutdown import ends_at_shutdown
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.typed_config import from_mapping, to_mapping
from gps_msgs.msg import TrainingProgress
from gps_trainer import train_gps
from gps_trainer.evaluation import random_looks, summary
from gps_trainer.progress import progress_msg
from gps_trainer.ros_robot import RosRobot, condition_geometry
from gps_trainer.run_folder import RunFolder

READY_TIMEOUT_S = 120.0
PARAMETERS = {
    "config_file": ("", "run preset YAML (ignored when run_dir already holds a run)"),
    "run_dir": ("", "run folder; resumed when it holds a run"),
    "conditions_file": ("", "conditions file (default: the preset's); the sim must offer its "
                            "sets"),
    "seed": (-1, "seed of the run when >= 0 (default: the preset's)"),
    "trajectory_pretraining_iterations": (0, "overrides the preset when > 0"),
    "end_to_end_iterations": (0, "overrides the preset when > 0"),
    "evaluation_trials": (0, "overrides the preset when > 0"),
    "trial_timeout_s": (300.0, "longest wait for one trial's sample"),
    "evaluate_policy": ("", "a policy file: evaluate it on evaluation_set instead of training"),
    "evaluation_set": ("", "condition set of evaluate_policy (default: the preset's test set)"),
    "evaluation_random_looks": ("", "a run config: each evaluation trial's look drawn from its "
                                    "appearance_randomisation"),
}


class TrainerNode(Node):
    """Parameters, the progress topic, and the learner run from `run()` beside the executor."""

    def __init__(self) -> None:
        super().__init__("gps_trainer")
        self.values = {name: self.declare_parameter(
            name, default, ParameterDescriptor(description=text)).value
            for name, (default, text) in PARAMETERS.items()}
        if not self.values["run_dir"]:
            raise ValueError("parameter run_dir is required")
        self.policy_file = self.values["evaluate_policy"]
        stray = [name for name in ("evaluation_set", "evaluation_random_looks")
                 if self.values[name] and not self.policy_file]
        if stray:
            raise ValueError(f"parameter {stray[0]} applies to evaluate_policy only (a training "
                             f"run takes its sets and looks from the preset)")
        self.run_folder = RunFolder(self.values["run_dir"])
        self.resume = self.run_folder.config_path.is_file()
        self.config = self._config()
        self.policy = (GaussianPolicy.load(self.policy_file, device="cpu") if self.policy_file
                       else None)
        self.evaluation_set = self.values["evaluation_set"] or self.config.test_set
        looks = self.values["evaluation_random_looks"]
        self.evaluation_looks = random_looks(looks) if looks else None
        self._progress_pub = self.create_publisher(TrainingProgress, "~/progress", 10)
        self.robot = self._robot()

    def _robot(self) -> RosRobot:
        """The clients of the sim and controller, made here, before an executor spins this node:
        an entity added while another thread spins the node can be seen half-built (rclpy's
        ActionClient then fails in the executor and the spin thread dies)."""
        config = self.config
        if self.policy_file:   # the conditions file may hold the evaluation set alone
            sets, train_set = {self.evaluation_set}, self.evaluation_set
        else:
            sets, train_set = {config.train_set, config.test_set} | (
                {config.validation_set} if config.validation_set else set()), config.train_set
        geometry = {name: condition_geometry(train_gps.make_env(config, name)) for name in sets}
        train_env = train_gps.make_env(config, train_set, render_observations=False)
        return RosRobot(self, geometry, train_env, train_set,
                        train_env.task.episode_steps, config.phase.noise, record_images=True,
                        trial_timeout=self.values["trial_timeout_s"], log=self.log,
                        appearance=config.appearance_randomisation,
                        pose_appearance=config.pose_pretraining.appearance_randomisation)

    def _config(self) -> train_gps.GpsRunConfig:
        """The run's config when run_dir holds one (the overrides apply to it only when
        evaluating), else config_file with the overrides."""
        overrides = {name: self.values[name] for name in (
            "trajectory_pretraining_iterations", "end_to_end_iterations", "evaluation_trials")
            if self.values[name] > 0}
        if self.values["conditions_file"]:
            overrides["conditions_file"] = str(Path(self.values["conditions_file"]).resolve())
        if self.values["seed"] >= 0:
            overrides["seed"] = self.values["seed"]
        if self.resume:
            mapping = self.run_folder.read_config()
            if self.policy_file:
                mapping.update(overrides)
            return from_mapping(train_gps.GpsRunConfig, mapping)
        if not self.values["config_file"]:
            raise ValueError("parameter config_file is required for a new run")
        return train_gps.load_config(self.values["config_file"], **overrides)

    def log(self, text: str) -> None:
        self.get_logger().info(text)

    def publish_progress(self, iteration: int, stage: str, records: list[dict]) -> None:
        self._progress_pub.publish(progress_msg(iteration, stage, records,
                                                self.get_clock().now().to_msg()))

    def run(self) -> None:
        """Train (or resume) the run, or evaluate evaluate_policy; the result in the log."""
        self.log(f"waiting for the sim and controller nodes (up to {READY_TIMEOUT_S:.0f} s)")
        self.robot.wait_until_ready(READY_TIMEOUT_S)
        if self.policy_file:
            self._evaluate()
            return
        self.log(("resuming " if self.resume else "starting ") + f"run {self.run_folder.path}")
        report = train_gps.train(self.config, self.run_folder, resume=self.resume, log=self.log,
                                 robot=self.robot, on_iteration=self.publish_progress)
        for name in (self.config.train_set, self.config.test_set):
            r = report[name]
            self.log(f"{name}: {r['successes']}/{r['trials']} = "
                     f"{100 * r['success_rate']:.1f}% (CNN policy alone)")
        self.log(f"robot samples: {report['samples']}; plots and metrics: {self.run_folder.path}")

    def _evaluate(self) -> None:
        """evaluate_policy alone on every condition of evaluation_set, its results to
        <run_dir>/policy_evaluation_<set>.json."""
        config, name = self.config, self.evaluation_set
        looks = self.evaluation_looks
        self.log(f"evaluating {self.policy_file} on the {len(self.robot.geometry[name])} "
                 f"conditions of {name!r}, {config.evaluation_trials} trials each"
                 + ("" if looks is None else
                    f", random looks from {self.values['evaluation_random_looks']}"))
        results = self.robot.evaluate(self.policy, name, config.evaluation_trials, config.seed,
                                      None, self.log, appearance=looks)
        report = summary(results)
        report.update(policy=str(Path(self.policy_file).resolve()), condition_set=name,
                      conditions_file=config.conditions_file,
                      random_looks=None if looks is None else to_mapping(looks))
        path = self.run_folder.path / f"policy_evaluation_{name}.json"
        self.run_folder.path.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        self.log(f"{name}: {report['successes']}/{report['trials']} = "
                 f"{100 * report['success_rate']:.1f}% (policy alone); results: {path}")


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        node = TrainerNode()
    except (ValueError, FileNotFoundError) as exc:   # PolicyFileError, ConfigError included
        rclpy.logging.get_logger("gps_trainer").fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    code = 130  # unless the run finishes
    try:
        with ends_at_shutdown():
            node.run()
            code = 0
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
