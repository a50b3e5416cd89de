// The user pools surge scales: one per zone and priority, enableAutoScaling=false (AKS refuses a
// manual count on an autoscaled pool, and two autoscalers would fight). Created at size 0 (spot)
// and 1 (regular, its minCount in deploy/config.example.yaml); surge owns the counts afterwards.
// AKS runs one operation per cluster at a time, hence one pool after the other (batchSize 1).
param clusterName string
param kubernetesVersion string
param zones array
param spotVmSize string
param regularVmSize string
param tags object

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' existing = {
  name: clusterName
}

@batchSize(1)
resource spot 'Microsoft.ContainerService/managedClusters/agentPools@2024-05-01' = [for zone in zones: {
  parent: cluster
  name: 'spot${zone}'
  properties: {
    mode: 'User'
    type: 'VirtualMachineScaleSets'
    vmSize: spotVmSize
    count: 0
    availabilityZones: [
      zone
    ]
    enableAutoScaling: false
    orchestratorVersion: empty(kubernetesVersion) ? null : kubernetesVersion
    maxPods: 110
    osType: 'Linux'
    osSKU: 'AzureLinux'
    osDiskType: 'Ephemeral'
    enableEncryptionAtHost: true
    // AKS labels and taints spot nodes kubernetes.azure.com/scalesetpriority=spot:NoSchedule.
    scaleSetPriority: 'Spot'
    scaleSetEvictionPolicy: 'Delete'
    spotMaxPrice: -1 // pay up to the regular price: evicted for capacity, never for price
    tags: union(tags, {
      'surge.io/managed': 'true'
    })
  }
}]

@batchSize(1)
resource regular 'Microsoft.ContainerService/managedClusters/agentPools@2024-05-01' = [for zone in zones: {
  parent: cluster
  name: 'reg${zone}'
  dependsOn: [
    spot
  ]
  properties: {
    mode: 'User'
    type: 'VirtualMachineScaleSets'
    vmSize: regularVmSize
    count: 1
    availabilityZones: [
      zone
    ]
    enableAutoScaling: false
    orchestratorVersion: empty(kubernetesVersion) ? null : kubernetesVersion
    maxPods: 110
    osType: 'Linux'
    osSKU: 'AzureLinux'
    osDiskType: 'Ephemeral'
    enableEncryptionAtHost: true
    scaleSetPriority: 'Regular'
    upgradeSettings: {
      maxSurge: '1'
    }
    tags: union(tags, {
      'surge.io/managed': 'true'
    })
  }
}]

output spotPoolNames array = [for zone in zones: 'spot${zone}']
output regularPoolNames array = [for zone in zones: 'reg${zone}']
