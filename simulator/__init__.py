"""The offline cluster simulator: the real control loop on simulated time.

Layers: ``engine`` (event heap, simulated clock) -> ``cluster`` (SimCluster: nodes, pods, the
scheduler; a ClusterSource) and ``cloud`` (SimCloud: the AKS model; a CloudProvider) ->
``workloads`` / ``traces`` (what arrives) -> ``run`` (wires them to
``autoscaler.control.loop.Reconciler``) -> ``report``. ``metrics.Recorder`` is what every part
writes its observations to. The simulator uses the autoscaler only through its protocols.
"""
