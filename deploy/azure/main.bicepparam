// Parameters for main.bicep: replace the placeholders, then
//   az deployment group create -g RG -f deploy/azure/main.bicep -p deploy/azure/main.bicepparam
using 'main.bicep'

param clusterName = 'aks-prod'
param adminGroupObjectIds = [
  '00000000-0000-0000-0000-000000000000' // an Entra ID group of cluster admins
]
param apiServerAuthorizedIpRanges = [
  '203.0.113.0/24' // your network (documentation range: replace)
]
param zones = [
  '1'
  '2'
  '3'
]
param systemVmSize = 'Standard_D4ds_v5'
param spotVmSize = 'Standard_D8ds_v5'
param regularVmSize = 'Standard_D8ds_v5'
param createUserPools = true
param surgeNamespace = 'surge-system'
param surgeServiceAccount = 'surge'
param tags = {
  app: 'surge'
}
