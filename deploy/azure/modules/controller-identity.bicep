// surge's Azure identity: a user-assigned managed identity, federated with its Kubernetes
// ServiceAccount (workload identity), holding a custom role on this cluster only: read the
// cluster, read and write its agent pools (scale = GET + PUT with If-Match), delete named
// machines (scale-down). No role on the node resource group, the VM scale sets or anything else.
param location string
param clusterName string
param oidcIssuerUrl string
param namespace string
param serviceAccount string
param tags object

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' existing = {
  name: clusterName
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${clusterName}-surge'
  location: location
  tags: tags
}

resource federation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: identity
  name: 'kubernetes-${namespace}-${serviceAccount}'
  properties: {
    issuer: oidcIssuerUrl
    subject: 'system:serviceaccount:${namespace}:${serviceAccount}'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(cluster.id, 'surge-agent-pool-operator')
  properties: {
    roleName: 'surge agent pool operator (${clusterName})'
    description: 'Scale and delete machines of the agent pools of one AKS cluster (the surge autoscaler).'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerService/managedClusters/read'
          'Microsoft.ContainerService/managedClusters/agentPools/read'
          'Microsoft.ContainerService/managedClusters/agentPools/write'
          'Microsoft.ContainerService/managedClusters/agentPools/deleteMachines/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      cluster.id
    ]
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, identity.id, role.id)
  scope: cluster
  properties: {
    roleDefinitionId: role.id
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
output roleDefinitionId string = role.id
