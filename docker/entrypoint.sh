#!/usr/bin/env bash
# Source ROS 2 and the workspace, then run the given command.
set -e
. /opt/ros/kilted/setup.bash
. /ws/install/setup.bash
exec "$@"
