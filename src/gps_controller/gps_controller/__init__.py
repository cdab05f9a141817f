"""Policies that run on the robot, the shared state/observation layout and the controller node."""
