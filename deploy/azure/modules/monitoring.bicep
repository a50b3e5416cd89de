// The Log Analytics workspace the cluster's monitoring add-on writes to.
param location string
param name string
param retentionDays int
param tags object

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionDays
  }
}

output workspaceId string = workspace.id
