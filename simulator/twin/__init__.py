"""The twin: loopback servers speaking the wire protocols the real SDKs use.

Callers: adapter tests, benchmarks and local runs of the autoscaler against fake services.
ARM + AAD: ``ArmTwin`` serves HTTPS with a certificate made at start (``tls``); ``ArmModel``
holds its state, or ``arm_sim.SimCloudArm`` puts SimCloud behind it.
"""

from simulator.twin.arm import ArmTwin
from simulator.twin.arm_model import ArmFault, ArmModel, AsyncFault, TwinOperation

__all__ = ["ArmFault", "ArmModel", "ArmTwin", "AsyncFault", "TwinOperation"]
