// One role on the Log Analytics workspace the detector queries, wherever that workspace lives
// (often the organisation's Sentinel workspace in another resource group or subscription).
// Deployed at the workspace's resource group; the assignment is scoped to the workspace alone.

@description('Name of the Log Analytics workspace (in this module\'s resource group).')
param workspaceName string

@description('Object id of the principal that gets the role.')
param principalId string

@description('Type of the principal: the app\'s and the policy\'s identities are service principals; operators may be a user or a group.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'ServicePrincipal'

@description('Id (GUID) of the built-in role definition to assign.')
param roleDefinitionId string

@description('Why the principal has the role; shown on the role assignment.')
param assignmentDescription string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, roleDefinitionId)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
    principalId: principalId
    principalType: principalType
    description: assignmentDescription
  }
}

@description('Name of the workspace.')
output name string = workspace.name

@description('Resource id of the workspace.')
output id string = workspace.id

@description('The workspace\'s customer id (a GUID): what the Log Analytics query API calls the workspace id.')
output customerId string = workspace.properties.customerId

@description('Azure region of the workspace (a data collection rule writing to it must be in it).')
output location string = workspace.location

@description('Resource id of the role assignment.')
output roleAssignmentId string = assignment.id
