// The notification destinations and the webhook signing key, as Key Vault secrets that the
// Function App reads through Key Vault references. Access is by Azure RBAC only, and the only data
// role on the vault is Key Vault Secrets User for the Function App's identity.
//
// Public network access stays on: a Flex Consumption app without a virtual network resolves Key
// Vault references over the vault's public endpoint, and App Service is not one of the "trusted
// services" a vault firewall lets through. Every request still needs an Entra ID token and a role.

@description('Name of the key vault (3-24 letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the key vault.')
param location string

@description('Tags applied to the key vault.')
param tags object = {}

@description('Object id of the Function App\'s managed identity, the only reader of the secrets.')
param principalId string

@description('Secret names, by setting: webhookUrl, webhookSecret, webhookSecretPrevious, teamsUrl, slackUrl.')
param secretNames object

@description('HTTPS URL of the generic webhook (empty: no webhook secret is written).')
@secure()
param notifyWebhookUrl string = ''

@description('Key that signs webhook requests with HMAC-SHA256 (empty: none written).')
@secure()
param notifyWebhookSecret string = ''

@description('The webhook key being rotated out (empty: none written).')
@secure()
param notifyWebhookSecretPrevious string = ''

@description('Microsoft Teams incoming-webhook or workflow URL (empty: none written).')
@secure()
param notifyTeamsUrl string = ''

@description('Slack incoming-webhook URL (empty: none written).')
@secure()
param notifySlackUrl string = ''

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    // Seven days (the minimum) keeps a deleted vault's name blocked for the shortest time;
    // purge protection still means nobody can destroy the secrets before then.
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Only the values given are written (a loop, not four conditional resources, so that checkov
// sees the secrets' properties: it does not look inside `if` resources).
var candidateSecrets = [
  {
    name: secretNames.webhookUrl
    value: notifyWebhookUrl
    contentType: 'text/uri-list'
  }
  {
    name: secretNames.webhookSecret
    value: notifyWebhookSecret
    contentType: 'text/plain'
  }
  {
    name: secretNames.webhookSecretPrevious
    value: notifyWebhookSecretPrevious
    contentType: 'text/plain'
  }
  {
    name: secretNames.teamsUrl
    value: notifyTeamsUrl
    contentType: 'text/uri-list'
  }
  {
    name: secretNames.slackUrl
    value: notifySlackUrl
    contentType: 'text/uri-list'
  }
]

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for secret in filter(candidateSecrets, candidate => !empty(candidate.value)): {
    parent: vault
    name: secret.name
    properties: {
      value: secret.value
      contentType: secret.contentType
    }
  }
]

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Key Vault references in the detector\'s app settings'
  }
}

@description('Name of the key vault.')
output name string = vault.name

@description('Resource id of the key vault.')
output id string = vault.id

@description('Vault URI (ends with a slash); secret URIs are this plus secrets/NAME.')
output uri string = vault.properties.vaultUri
