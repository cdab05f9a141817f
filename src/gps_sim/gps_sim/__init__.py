"""MuJoCo simulation of the PR2 coat-hanger task and its ROS 2 node."""
