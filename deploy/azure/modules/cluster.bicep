// The AKS cluster and its System pool.
param location string
param clusterName string
param kubernetesVersion string
param adminGroupObjectIds array
param apiServerAuthorizedIpRanges array
param zones array
param systemVmSize string
param logAnalyticsWorkspaceId string
param tags object

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' = {
  // checkov:skip=CKV_AZURE_8: AKS removed the Kubernetes Dashboard add-on (Kubernetes 1.19+); there is nothing to disable, and the API no longer takes the kubeDashboard profile.
  // checkov:skip=CKV_AZURE_172: the Key Vault secrets provider add-on is not enabled (surge and this cluster keep no secrets in Key Vault), so there is no rotation to configure.
  name: clusterName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  sku: {
    name: 'Base'
    tier: 'Standard' // the uptime SLA: a scale-up needs the API server
  }
  properties: {
    kubernetesVersion: empty(kubernetesVersion) ? null : kubernetesVersion
    dnsPrefix: clusterName
    enableRBAC: true
    // Entra ID integration with Kubernetes RBAC (not Azure RBAC for Kubernetes): people get
    // access through RoleBindings to Entra groups; surge through its ServiceAccount.
    aadProfile: {
      managed: true
      enableAzureRBAC: false
      adminGroupObjectIDs: adminGroupObjectIds
      tenantID: tenant().tenantId
    }
    disableLocalAccounts: true
    oidcIssuerProfile: {
      enabled: true
    }
    securityProfile: {
      workloadIdentity: {
        enabled: true
      }
    }
    apiServerAccessProfile: {
      authorizedIPRanges: apiServerAuthorizedIpRanges
    }
    autoUpgradeProfile: {
      upgradeChannel: 'patch'
      nodeOSUpgradeChannel: 'NodeImage'
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPluginMode: 'overlay'
      networkDataplane: 'cilium'
      networkPolicy: 'cilium'
      loadBalancerSku: 'standard'
      outboundType: 'loadBalancer'
    }
    addonProfiles: {
      azurepolicy: {
        enabled: true
      }
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: logAnalyticsWorkspaceId
        }
      }
    }
    agentPoolProfiles: [
      {
        name: 'system'
        mode: 'System'
        type: 'VirtualMachineScaleSets'
        vmSize: systemVmSize
        count: length(zones)
        availabilityZones: zones
        enableAutoScaling: false
        maxPods: 110 // AKS's default with Azure CNI overlay
        osType: 'Linux'
        osSKU: 'AzureLinux'
        osDiskType: 'Ephemeral'
        enableEncryptionAtHost: true // needs the EncryptionAtHost feature (deploy/README.md)
        // Only critical add-ons (and surge, which tolerates it) run here.
        nodeTaints: [
          'CriticalAddonsOnly=true:NoSchedule'
        ]
        upgradeSettings: {
          maxSurge: '33%'
        }
      }
    ]
  }
}

output name string = cluster.name
output id string = cluster.id
output oidcIssuerUrl string = cluster.properties.oidcIssuerProfile.issuerURL
