"""surge: a pending-pod cluster autoscaler for Azure Kubernetes Service.

Layers (imports point downward only):
``control`` -> ``cloud`` / ``kube`` / ``planner`` -> ``model``.
"""

__version__ = "0.1.0"
