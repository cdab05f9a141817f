"""The state/observation layout is the paper's: dX = 32, dU = 7, a 32-dim configuration."""

import numpy as np
import pytest

from gps_controller.layout import LEFT_ARM_JOINTS, PR2_RIGHT_ARM, Layout


def test_dimensions_match_the_paper():
    assert (PR2_RIGHT_ARM.dX, PR2_RIGHT_ARM.dU, PR2_RIGHT_ARM.dO_config) == (32, 7, 32)
    assert LEFT_ARM_JOINTS[0] == "l_shoulder_pan_joint"


def test_blocks_tile_the_vector_without_gaps():
    for blocks, total in ((PR2_RIGHT_ARM.state_blocks, 32), (PR2_RIGHT_ARM.config_blocks, 32)):
        ends = [b.start + b.size for b in blocks]
        assert [b.start for b in blocks] == [0] + ends[:-1] and ends[-1] == total


def test_state_holds_points_relative_to_target_and_config_never_does():
    q, qd = np.arange(7.0), -np.arange(7.0)
    ee, vel, target = np.ones((3, 3)), 2 * np.ones((3, 3)), 0.25 * np.ones((3, 3))
    x = PR2_RIGHT_ARM.assemble_state(q, qd, ee, vel, target)
    o = PR2_RIGHT_ARM.assemble_config(q, qd, ee, vel)
    assert np.allclose(x[PR2_RIGHT_ARM.state_slice("ee_points_rel_target")], 0.75)
    assert np.allclose(o[PR2_RIGHT_ARM.config_slice("ee_points")], 1.0)
    assert np.array_equal(x[:14], o[:14])


def test_unknown_block_is_a_clear_error():
    with pytest.raises(KeyError, match="no block named 'elbow'"):
        Layout().state_slice("elbow")
