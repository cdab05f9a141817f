from setuptools import find_packages, setup

package_name = "gps_controller"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="GPS ROS 2 maintainers",
    maintainer_email="maintainers@gps-ros2.org",
    description="Policies, observation layout and the 20 Hz controller node.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "controller_node = gps_controller.controller_node:main",
    ]},
)
