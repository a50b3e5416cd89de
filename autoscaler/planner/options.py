"""Agent pools -> node options: what one more node of each managed pool looks like, and costs.

Callers: the snapshot loader and the control loop build ``ClusterState.options`` with
``build_options``; the simulator does the same for its AKS model. One option per pool: a pool
has one priority and either exactly one zone or none we can ask for (zone-unknown).

Never guesses: a pool whose node shape or price cannot be known is left out, with a warning
that names it, rather than planned on made-up figures.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from autoscaler.model.aks import (
    REGION_LABEL,
    Catalog,
    VmSize,
    kubernetes_minor,
    node_allocatable,
    node_labels,
    node_taints,
    zone_label,
)
from autoscaler.model.labels import HOSTNAME_LABEL, labels_of
from autoscaler.model.node import Node
from autoscaler.model.pool import AgentPool, NodeOption, Priority, TemplateNode
from autoscaler.model.resources import CPU, GPU, Resources


def build_options(
    region: str,
    pools: Sequence[AgentPool],
    nodes: Sequence[Node],
    catalog: Catalog,
    managed: Collection[str] | None = None,
) -> tuple[tuple[NodeOption, ...], tuple[str, ...]]:
    """One ``NodeOption`` per managed pool (``managed`` None: every pool), by pool name, and
    the warnings about pools left out."""
    warnings: list[str] = []
    names = {pool.name for pool in pools}
    if managed is not None:
        warnings.extend(
            f"managed pool {name!r} is not among the cluster's agent pools"
            for name in sorted(set(managed) - names)
        )
    options: list[NodeOption] = []
    for pool in sorted(pools, key=lambda p: p.name):
        if managed is not None and pool.name not in managed:
            continue
        option = _option(region, pool, _model_node(pool, nodes), catalog, warnings)
        if option is not None:
            options.append(option)
    return tuple(options), tuple(warnings)


def _model_node(pool: AgentPool, nodes: Sequence[Node]) -> Node | None:
    """The first node of the pool by name that reports allocatable CPU, ready or not.

    A node that has just registered may not report allocatable yet; copying that would make
    the template look empty."""
    mine = sorted(
        (n for n in nodes if n.pool == pool.name and n.allocatable.get_units(CPU) > 0),
        key=lambda n: n.name,
    )
    return mine[0] if mine else None


def _option(
    region: str, pool: AgentPool, model: Node | None, catalog: Catalog, warnings: list[str]
) -> NodeOption | None:
    vm = catalog.get(pool.vm_size)
    where = f"pool {pool.name!r} (VM size {pool.vm_size})"
    if vm is None:
        # Even with a node to copy the shape from, there is no price to rank the pool by.
        warnings.append(f"{where} skipped: size not in the VM-size catalog; add it as an override")
        return None
    price = vm.spot_price_per_hour if pool.priority is Priority.SPOT else vm.price_per_hour
    if price is None:
        warnings.append(f"{where} skipped: no Spot price for this size (Azure offers no Spot)")
        return None
    allocatable = _allocatable(pool, vm, model, where, warnings)
    if allocatable is None:
        return None
    zone = zone_label(region, pool.zones[0]) if len(pool.zones) == 1 else None
    labels = dict(node_labels(pool, vm, zone))
    labels[HOSTNAME_LABEL] = f"{pool.name}-template"
    labels[REGION_LABEL] = region.lower()
    template = TemplateNode(
        labels=labels_of(labels),
        taints=node_taints(pool),
        allocatable=allocatable,
        vcpus=vm.vcpus,
        memory_bytes=vm.memory_bytes,
    )
    return NodeOption(
        pool=pool.name,
        vm_size=pool.vm_size,
        zone=zone,
        priority=pool.priority,
        template=template,
        price_per_hour=price,
    )


def _allocatable(
    pool: AgentPool, vm: VmSize, model: Node | None, where: str, warnings: list[str]
) -> Resources | None:
    """A real node's allocatable when the pool has one, else the AKS formula (Linux only)."""
    if model is not None:
        allocatable = model.allocatable
        if vm.gpus > 0 and allocatable.get_units(GPU) == 0:
            # The device plugin advertises GPUs some time after the node registers.
            allocatable = allocatable + Resources.of({GPU: vm.gpus})
        return allocatable
    if pool.os_type.lower() != "linux":
        warnings.append(
            f"{where} skipped: no node to copy and the reservation formula is "
            f"for Linux only (osType {pool.os_type})"
        )
        return None
    try:
        kubernetes_minor(pool.kubernetes_version)
    except ValueError:
        warnings.append(
            f"{where} skipped: no node to copy and the Kubernetes version "
            f"{pool.kubernetes_version!r} is unreadable"
        )
        return None
    return node_allocatable(
        vm,
        pool.max_pods,
        pool.kubernetes_version,
        ephemeral_storage_bytes=template_ephemeral_storage(pool.os_disk_size_gb),
    )


def template_ephemeral_storage(os_disk_size_gb: int) -> int:
    """Ephemeral-storage allocatable of a node not yet seen, from its OS disk size.

    The kubelet reports the root filesystem less the hard eviction threshold
    (``nodefs.available<10%`` on AKS); the filesystem is a little smaller than the disk
    (partition table, boot partitions), so 85% of the disk's GiB is a safe lower estimate.
    A real node's figure replaces this as soon as one of the pool exists.
    """
    return os_disk_size_gb * 2**30 * 85 // 100
