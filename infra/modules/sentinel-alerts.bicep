// The Sentinel destination's side in the workspace: the custom table of alerts, the data
// collection rule whose stream the notifier posts rows to (Logs Ingestion API), and the
// Monitoring Metrics Publisher role for the Function App's identity on that rule alone.
// Deployed into the workspace's resource group; the rule lives in the workspace's region,
// as a data collection rule must.
//
// The table's columns, the stream declaration and the transformation come from
// ../sentinel/alert-table.json, which detectors/delivery/destinations/sentinel_table.py
// writes (tests/delivery/test_sentinel.py keeps the two equal). A `Direct` rule has its
// own ingestion endpoint, so no data collection endpoint is needed.

@description('Name of the Log Analytics workspace (in this module\'s resource group).')
param workspaceName string

@description('Azure region of the workspace: the data collection rule must be in it.')
param location string

@description('Name of the data collection rule.')
param ruleName string

@description('Tags applied to the data collection rule.')
param tags object = {}

@description('Object id of the identity that uploads alerts (the Function App\'s).')
param principalId string

@description('Days the table keeps alerts in the analytics tier (queries, the analytic rule).')
@minValue(4)
@maxValue(730)
param retentionInDays int = 90

@description('Days the table keeps alerts in all, long-term retention included.')
@minValue(4)
@maxValue(4383)
param totalRetentionInDays int = 365

var declaration = loadJsonContent('../sentinel/alert-table.json')
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource table 'Microsoft.OperationalInsights/workspaces/tables@2023-09-01' = {
  parent: workspace
  name: declaration.tableName
  properties: {
    plan: 'Analytics'
    retentionInDays: retentionInDays
    totalRetentionInDays: totalRetentionInDays
    schema: {
      name: declaration.tableName
      description: 'Alerts of the App Service detector, one row per alert (docs/consumers.md).'
      columns: declaration.tableColumns
    }
  }
}

resource rule 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: ruleName
  location: location
  tags: tags
  kind: 'Direct'
  properties: {
    description: 'The App Service detector\'s alerts into ${declaration.tableName}.'
    streamDeclarations: {
      '${declaration.streamName}': {
        columns: declaration.streamColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'workspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          declaration.streamName
        ]
        destinations: [
          'workspace'
        ]
        transformKql: declaration.transformKql
        outputStream: declaration.outputStream
      }
    ]
  }
  dependsOn: [
    table
  ]
}

// Upload rows to this rule's streams, nothing else: not the workspace, not other rules.
resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, principalId, monitoringMetricsPublisher)
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'App Service detector: uploads its alerts to ${declaration.tableName}'
  }
}

@description('Name of the data collection rule.')
output name string = rule.name

@description('Resource id of the data collection rule.')
output id string = rule.id

@description('The rule\'s immutable id (dcr-...): DETECTOR_SENTINEL_RULE_ID.')
output immutableId string = rule.properties.immutableId

@description('The rule\'s Logs Ingestion endpoint: DETECTOR_SENTINEL_ENDPOINT.')
output endpoint string = rule.properties.endpoints.logsIngestion

@description('The stream the rows are posted to: DETECTOR_SENTINEL_STREAM.')
output streamName string = declaration.streamName

@description('Name of the custom table.')
output tableName string = table.name
