from setuptools import find_packages, setup

package_name = "gps_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["models/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="GPS ROS 2 maintainers",
    maintainer_email="maintainers@gps-ros2.org",
    description="MuJoCo PR2 coat-hanger simulation and its ROS 2 node.",
    license="Apache-2.0",
    entry_points={"console_scripts": ["sim_node = gps_sim.sim_node:main"]},
)
