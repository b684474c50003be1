// Application Insights for the Function App: workspace-based, and local (instrumentation key)
// authentication off, so only an Entra ID token with Monitoring Metrics Publisher can send.

@description('Name of the Application Insights component.')
param name string

@description('Azure region of the component.')
param location string

@description('Tags applied to the component.')
param tags object = {}

@description('Resource id of the Log Analytics workspace that stores the telemetry.')
param workspaceId string

@description('Object id of the Function App\'s managed identity, allowed to publish telemetry.')
param principalId string

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource component 'Microsoft.Insights/components@2020-02-02' = {
  name: name
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspaceId
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(component.id, principalId, monitoringMetricsPublisher)
  scope: component
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Function App telemetry with Entra ID authentication'
  }
}

@description('Name of the component.')
output name string = component.name

@description('Resource id of the component.')
output id string = component.id
