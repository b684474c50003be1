// What the operators' `detector` commands need on the detector's storage account, for the one
// principal (a person, a group, or a pipeline's service principal) named by operatorsPrincipalId:
//
// - Storage Table Data Contributor: `baselines`, `allow`, `feedback` and `backfill` read and
//   write the baseline, state and allow tables; `status` reads the checkpoint and outbox.
// - Storage Queue Data Contributor: `status` reads the queues' depths, and `poison requeue`
//   receives and deletes poison messages and sends them back to the alert queue.
//
// Both on the account, as the app's own: the commands touch three of its four tables and both
// queues, and Storage Blob data (the host's and the deployment package) is not granted at all.
// Log Analytics Reader on the workspace is the workspace-role module's, in the workspace's group.

@description('Name of the detector\'s storage account (in this module\'s resource group).')
param storageAccountName string

@description('Object id of the operators (a user, a group or a service principal).')
param principalId string

@description('Type of the principal: User, Group or ServicePrincipal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

var roles = {
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roles.storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: principalType
    description: 'Detector operators: baselines, allow, feedback, backfill and status'
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roles.storageQueueDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: principalType
    description: 'Detector operators: status, and poison list and requeue'
  }
}

@description('Name of the storage account.')
output name string = account.name

@description('Resource id of the storage account.')
output id string = account.id
