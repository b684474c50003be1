// The detector's own Log Analytics workspace: Application Insights telemetry always goes here,
// and it is also the workspace the detector queries when no existing one is given.

@description('Name of the workspace.')
param name string

@description('Azure region of the workspace.')
param location string

@description('Tags applied to the workspace.')
param tags object = {}

@description('Days of retention (up to 31 days is included in the ingestion price; longer is charged).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Access to a resource's logs follows access to the resource, not the whole workspace.
      enableLogAccessUsingOnlyResourcePermissions: true
      disableLocalAuth: true
    }
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

@description('Name of the workspace.')
output name string = workspace.name

@description('Resource id of the workspace.')
output id string = workspace.id
