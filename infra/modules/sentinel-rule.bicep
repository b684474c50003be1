// The Sentinel analytic rule over the detector's alert table: an incident per burst of alerts,
// with the account, addresses and sites as entities. Deployed into the workspace's resource
// group, on a workspace where Microsoft Sentinel is enabled.
//
// Its properties are those of ../sentinel/analytic-rule.json, the same template an analyst can
// import by hand (Sentinel > Analytics > Import): one definition for both.

@description('Name of the Sentinel workspace (in this module\'s resource group).')
param workspaceName string

var template = loadJsonContent('../sentinel/analytic-rule.json')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource rule 'Microsoft.SecurityInsights/alertRules@2024-09-01' = {
  scope: workspace
  name: guid(workspace.id, 'appservice-detector-alerts')
  kind: 'Scheduled'
  properties: template.resources[0].properties
}

@description('Name of the analytic rule.')
output name string = rule.name

@description('Resource id of the analytic rule.')
output id string = rule.id
