"""The neural-network policies that run on the robot: the paper's visuomotor CNN, the full-state
network used in trajectory pre-training, the pose-regression network that pre-trains the vision
layers, and the Gaussian policy u ~ N(f(o), Sigma) that wraps a network for acting and transport."""
