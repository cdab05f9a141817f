"""The web GUI: a ROS 2 node (gui_node) that serves a teleop page (camera with the policy's
feature points, joint states, the left-arm target, reset, one trial, saving conditions) and a
live training dashboard. Every change the page makes goes out as a ROS topic or service call
that the command line can make too; the node keeps only the latest messages it has seen."""
