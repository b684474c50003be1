// The detector's one identity: a user-assigned managed identity, so that role assignments can
// be made before the Function App exists and survive its re-creation.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Name of the identity.')
output name string = identity.name

@description('Resource id of the identity.')
output id string = identity.id

@description('Object (principal) id of the identity, for role assignments.')
output principalId string = identity.properties.principalId

@description('Client (application) id of the identity, for the app settings that name it.')
output clientId string = identity.properties.clientId
