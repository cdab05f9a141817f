"""Bringup of the hanger task: `ros2 launch gps_trainer hanger.launch.py [robot:=sim|real]`.

robot:=sim starts the MuJoCo sim node (gps_sim) with the parameters of config/hanger_nodes.yaml;
robot:=real starts nothing in its place, for a PR2 or Gazebo whose ros2_control already
publishes /joint_states and the camera and takes /effort_controller/commands. The controller
and trainer nodes join this description as they land.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import LaunchConfigurationEquals
from launch_ros.actions import Node


def node_parameters(config_dir: Path, node: str) -> dict:
    """The node's section of hanger_nodes.yaml, its *_file entries made absolute."""
    section = yaml.safe_load((config_dir / "hanger_nodes.yaml").read_text())[node]
    params = dict(section["ros__parameters"])
    for key, value in params.items():
        if key.endswith("_file"):
            params[key] = str(config_dir / value)
    return params


def generate_launch_description() -> LaunchDescription:
    config_dir = Path(get_package_share_directory("gps_trainer")) / "config"
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="sim", choices=["sim", "real"],
                              description="sim: the MuJoCo sim node; real: a PR2 or Gazebo"),
        Node(package="gps_sim", executable="sim_node", name="gps_sim", output="screen",
             parameters=[node_parameters(config_dir, "gps_sim")],
             condition=LaunchConfigurationEquals("robot", "sim")),
    ])
