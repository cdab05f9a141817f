"""Suite-wide test settings: each pytest run talks DDS on a domain of its own, so parallel runs
on one machine never see each other's topics."""

import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
