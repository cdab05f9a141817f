"""PR2 right-arm gains that scale the torque cost and the initial controller.

Joint order as in gps_controller.layout.RIGHT_ARM_JOINTS. Costs weight torques by 1/PR2_GAINS and
the initial LQR controller takes 1/PR2_GAINS as its double-integrator input gains, so joints that
need little torque (the wrist) are penalised more and respond more per unit of action.
"""

import numpy as np

PR2_GAINS = np.array([3.09, 1.08, 0.393, 0.674, 0.111, 0.152, 0.098])
