// surge: the AKS cluster it is built for, and the identity it runs as.
//
//   az deployment group create -g RG -f deploy/azure/main.bicep -p deploy/azure/main.bicepparam
//
// - Entra ID integration with Kubernetes RBAC (no local accounts), OIDC issuer, workload identity.
// - A System pool across 3 zones (CriticalAddonsOnly: surge itself runs there, never on a node it
//   may remove).
// - User pools one per zone and priority, spot and regular, with enableAutoScaling=false: the
//   layout that lets surge decide per zone, spot first. Their names match
//   deploy/config.example.yaml (spot1..3, reg1..3).
// - A user-assigned managed identity federated with surge's ServiceAccount, holding a custom role
//   on the cluster: read it, read and write its agent pools, delete machines. Nothing else.
targetScope = 'resourceGroup'

@description('Azure region of the cluster.')
param location string = resourceGroup().location

@description('Name of the AKS cluster.')
@minLength(1)
@maxLength(63)
param clusterName string

@description('Kubernetes version; empty: the region default.')
param kubernetesVersion string = ''

@description('Object IDs of the Entra ID groups that are cluster-admin.')
param adminGroupObjectIds array

@description('CIDR ranges allowed to reach the API server (your network, CI). Empty: any.')
param apiServerAuthorizedIpRanges array = []

@description('Availability zones of the region to use: one System node and one user pool per priority in each.')
param zones array = [
  '1'
  '2'
  '3'
]

@description('VM size of the System pool.')
param systemVmSize string = 'Standard_D4ds_v5'

@description('VM size of the spot user pools.')
param spotVmSize string = 'Standard_D8ds_v5'

@description('VM size of the regular user pools.')
param regularVmSize string = 'Standard_D8ds_v5'

@description('Create the user pools. Set false on later runs: a redeploy would reset their node counts, which surge owns.')
param createUserPools bool = true

@description('Namespace and ServiceAccount of the controller (deploy/kubernetes/base).')
param surgeNamespace string = 'surge-system'
param surgeServiceAccount string = 'surge'

@description('Days of logs kept in the Log Analytics workspace.')
@minValue(30)
param logRetentionDays int = 30

param tags object = {}

module monitoring 'modules/monitoring.bicep' = {
  name: '${clusterName}-monitoring'
  params: {
    location: location
    name: '${clusterName}-logs'
    retentionDays: logRetentionDays
    tags: tags
  }
}

module cluster 'modules/cluster.bicep' = {
  name: '${clusterName}-cluster'
  params: {
    location: location
    clusterName: clusterName
    kubernetesVersion: kubernetesVersion
    adminGroupObjectIds: adminGroupObjectIds
    apiServerAuthorizedIpRanges: apiServerAuthorizedIpRanges
    zones: zones
    systemVmSize: systemVmSize
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module userPools 'modules/user-pools.bicep' = if (createUserPools) {
  name: '${clusterName}-user-pools'
  params: {
    clusterName: cluster.outputs.name
    kubernetesVersion: kubernetesVersion
    zones: zones
    spotVmSize: spotVmSize
    regularVmSize: regularVmSize
    tags: tags
  }
}

module controller 'modules/controller-identity.bicep' = {
  name: '${clusterName}-surge-identity'
  params: {
    location: location
    clusterName: cluster.outputs.name
    oidcIssuerUrl: cluster.outputs.oidcIssuerUrl
    namespace: surgeNamespace
    serviceAccount: surgeServiceAccount
    tags: tags
  }
}

@description('Put this in the ServiceAccount annotation azure.workload.identity/client-id.')
output controllerClientId string = controller.outputs.clientId
output oidcIssuerUrl string = cluster.outputs.oidcIssuerUrl
output clusterName string = cluster.outputs.name
output customRoleId string = controller.outputs.roleDefinitionId
