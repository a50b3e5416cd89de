"""The offline cluster simulator: the real control loop on simulated time.

Layers: ``engine`` (event heap, simulated clock) -> ``cluster`` + ``scheduler`` (SimCluster:
nodes, pods, a kube-scheduler-like placement on the shared predicates; a ClusterSource) and
``cloud`` (SimCloud: the AKS model; a CloudProvider) -> ``scenario`` / ``curves`` /
``workloads`` / ``traces`` (what arrives; ``loader``, ``settings`` and ``yamlsource`` read
scenario files) -> ``run`` (wires them to ``autoscaler.control.loop.Reconciler``) -> ``report``,
``summary``, ``plots``; ``cli`` is ``surge simulate``. ``metrics.Recorder`` is what every part
writes its observations to. ``twin`` serves the Kubernetes and ARM wire protocols on loopback.
The simulator uses the autoscaler only through its protocols.
"""
