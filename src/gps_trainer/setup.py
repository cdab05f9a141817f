from glob import glob

from setuptools import find_packages, setup

package_name = "gps_trainer"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={"gps_trainer.gui": ["static/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="GPS ROS 2 maintainers",
    maintainer_email="maintainers@gps-ros2.org",
    description="BADMM guided policy search core and the trainer node.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "gui_node = gps_trainer.gui.gui_node:main",
        "trainer_node = gps_trainer.trainer_node:main",
    ]},
)
