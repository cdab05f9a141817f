# Source this file (bash or sh) to use the workspace: the virtual environment with the ROS 2
# wheels as the underlay, the colcon install/ overlay, loopback-only DDS and EGL rendering.
#   . scripts/env.sh
# scripts/setup.sh creates everything this file points at.

if [ -n "${BASH_SOURCE:-}" ]; then
  GPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
else
  GPS_ROOT="${GPS_ROOT:-$(pwd)}"
fi
export GPS_ROOT
_gps_venv="$GPS_ROOT/.venv"
_gps_site="$_gps_venv/lib/python3.11/site-packages"

export VIRTUAL_ENV="$_gps_venv"
case ":$PATH:" in *":$_gps_venv/bin:"*) ;; *) export PATH="$_gps_venv/bin:$PATH" ;; esac

# The ROS wheels install their share/ and lib/ under the environment's prefix.
export AMENT_PREFIX_PATH="$_gps_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_gps_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# What the wheels' bootstrap hook would otherwise set by re-executing every Python process.
_gps_libs="$_gps_venv/lib"
for _gps_dir in "$_gps_site"/ros_*.libs; do
  [ -d "$_gps_dir" ] && _gps_libs="$_gps_libs:$_gps_dir"
done
export LD_LIBRARY_PATH="$_gps_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Discovery stays on this machine: no multicast to the network.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# Large samples (100 camera frames) travel in one shared-memory message:
# config/fastdds_large_samples.xml.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$GPS_ROOT/config/fastdds_large_samples.xml}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"

if [ -z "${GPS_ENV_NO_INSTALL:-}" ] && [ -f "$GPS_ROOT/install/setup.sh" ]; then
  COLCON_CURRENT_PREFIX="$GPS_ROOT/install" . "$GPS_ROOT/install/setup.sh"
fi
unset _gps_venv _gps_site _gps_libs _gps_dir
