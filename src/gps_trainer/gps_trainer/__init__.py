"""Guided policy search trainer: the ROS-free learning core and its node adapters."""
