"""Bringup of the hanger task: the sim (or the real robot), the controller and the trainer.

    ros2 launch gps_trainer hanger.launch.py [robot:=sim|real] [mode:=lockstep|realtime]
        [run_dir:=runs/hanger_ros] [preset:=<run preset>]
        [conditions:=<conditions file>] [gui:=true|false] [gui_port:=8080]
        [robot_description:=<file>] [evaluate:=<policy file>] [evaluation_set:=<set>]
        [random_looks:=<run config>]

robot:=sim starts the MuJoCo sim node (gps_sim); robot:=real starts nothing in its place, for a
PR2 or Gazebo whose ros2_control publishes /joint_states and the camera and takes
/effort_controller/commands (use mode:=realtime there). gui:=true (the default) adds the web GUI
node: teleop page and training dashboard on http://127.0.0.1:<gui_port>/. Every node reads config/hanger.yaml;
the file names in it are passed again as absolute paths, with the launch arguments, on top.
The trainer runs the preset into run_dir (resuming a run already there); with evaluate:= it
trains nothing and evaluates that policy file alone on evaluation_set (default: the preset's
test set) instead, each trial's look drawn from random_looks' appearance_randomisation when
given, its results in run_dir. When the trainer exits the launch shuts down. Where launch_ros is not installed, `python -m gps_trainer.bringup` runs this
same file (gps_trainer.launch_subset evaluates it) and starts the same processes.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.conditions import LaunchConfigurationEquals
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gps_sim.scene import MODEL_PATH


def generate_launch_description() -> LaunchDescription:
    config_dir = Path(get_package_share_directory("gps_trainer")) / "config"
    params_file = str(config_dir / "hanger.yaml")
    mode = LaunchConfiguration("mode")
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="sim", choices=["sim", "real"],
                              description="sim: the MuJoCo sim node; real: a PR2 or Gazebo"),
        DeclareLaunchArgument("mode", default_value="lockstep", choices=["lockstep", "realtime"],
                              description="lockstep with the sim; realtime on a robot"),
        DeclareLaunchArgument("run_dir", default_value="runs/hanger_ros",
                              description="the trainer's run folder (resumed if it holds a run)"),
        DeclareLaunchArgument("preset", default_value=str(config_dir / "hanger_gps_cpu.yaml"),
                              description="the trainer's run preset"),
        DeclareLaunchArgument("conditions", default_value=str(config_dir /
                                                              "hanger_conditions.yaml"),
                              description="conditions file of the sim and the trainer"),
        DeclareLaunchArgument("gui", default_value="true", choices=["true", "false"],
                              description="serve the teleop page and the training dashboard"),
        DeclareLaunchArgument("gui_port", default_value="8080",
                              description="TCP port of the web GUI on 127.0.0.1"),
        DeclareLaunchArgument("robot_description", default_value=str(MODEL_PATH),
                              description="robot model (MJCF or URDF) for the kinematics"),
        DeclareLaunchArgument("evaluate", default_value="",
                              description="a policy file: evaluate it instead of training"),
        DeclareLaunchArgument("evaluation_set", default_value="",
                              description="condition set of evaluate (default: the test set)"),
        DeclareLaunchArgument("random_looks", default_value="",
                              description="with evaluate: a run config whose "
                                          "appearance_randomisation draws each trial's look"),
        Node(package="gps_sim", executable="sim_node", name="gps_sim", output="screen",
             parameters=[params_file, {
                 "conditions_file": LaunchConfiguration("conditions"), "mode": mode}],
             condition=LaunchConfigurationEquals("robot", "sim")),
        Node(package="gps_controller", executable="controller_node", name="gps_controller",
             output="screen",
             parameters=[params_file, {
                 "robot_description": LaunchConfiguration("robot_description"), "mode": mode}]),
        Node(package="gps_trainer", executable="gui_node", name="gps_gui", output="screen",
             parameters=[params_file, {
                 "conditions_file": LaunchConfiguration("conditions"),
                 "port": LaunchConfiguration("gui_port")}],
             condition=LaunchConfigurationEquals("gui", "true")),
        Node(package="gps_trainer", executable="trainer_node", name="gps_trainer",
             output="screen", on_exit=Shutdown(),
             parameters=[params_file, {
                 "config_file": LaunchConfiguration("preset"),
                 "conditions_file": LaunchConfiguration("conditions"),
                 "run_dir": LaunchConfiguration("run_dir"),
                 "evaluate_policy": LaunchConfiguration("evaluate"),
                 "evaluation_set": LaunchConfiguration("evaluation_set"),
                 "evaluation_random_looks": LaunchConfiguration("random_looks")}]),
    ])
