// The App Service credential and WebJob detector, deployed into one subscription by `azd up`
// or `az deployment sub create` (docs/deploy.md). Subscription scope: the resource group is created
// (or an existing one reused), and the optional Activity Log export and audit-log policy live here.
//
// NOT compiled with the Bicep CLI on the machines that wrote it (none is available offline):
// `az bicep build` and `az deployment sub what-if` are the first steps of docs/deploy.md.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; resource names derive from it.')
param environmentName string

@minLength(1)
@description('Azure region of every resource (one that offers the Flex Consumption plan).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to deploy into (empty: rg-<environmentName>).')
param resourceGroupName string = ''

@description('Create the resource group (false: it exists already and is used as it is).')
param createResourceGroup bool = true

@description('Resource id of an existing Log Analytics workspace to query, e.g. the Sentinel workspace; it may be in another resource group or subscription (empty: the detector\'s own new workspace).')
param logAnalyticsWorkspaceResourceId string = ''

@description('Send this subscription\'s Activity Log to the workspace (needs rights at subscription scope; leave off if it is already sent there).')
param enableActivityLogExport bool = false

@description('Assign the policy that turns on App Service audit logs for every web app and slot in the subscription (needs rights at subscription scope).')
param enableAuditLogPolicy bool = false

@description('Object id of the operators who run the `detector` commands: a user, a group or a pipeline\'s service principal. They get Storage Table Data Contributor and Storage Queue Data Contributor on the detector\'s storage account and Log Analytics Reader on the workspace. azd passes the signed-in deployer (AZURE_PRINCIPAL_ID); empty: no operator roles.')
param operatorsPrincipalId string = ''

@description('Type of operatorsPrincipalId: User, Group or ServicePrincipal (a pipeline signed in as a service principal).')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorsPrincipalType string = 'User'

@description('Deploy the workbook and the alert rules (failed runs, an hour behind, alerts on the poison queue) over the app\'s telemetry.')
param enableMonitoring bool = true

@description('Resource id of an action group the monitoring alert rules notify (empty: the alerts show in Azure Monitor only).')
param monitoringActionGroupId string = ''

@description('NCRONTAB schedule (six fields, UTC) of the detection timer.')
param detectorSchedule string = '0 */5 * * * *'

@description('Findings scoring below this are not alerts (DETECTOR_ALERT_THRESHOLD); at most the medium-severity threshold, 50 unless DETECTOR_MEDIUM_THRESHOLD is set.')
@minValue(0)
@maxValue(50)
param alertThreshold int = 35

@description('Slice of event time one timer step scores, in minutes.')
@minValue(1)
@maxValue(1440)
param windowMinutes int = 15

@description('Minutes a slice of event time waits for its late rows before it is scored (the detection delay the timer adds).')
@minValue(0)
@maxValue(1440)
param holdMinutes int = 20

@description('Rows ingested this recently (seconds) are left for the next run.')
@minValue(0)
@maxValue(3600)
param settleSeconds int = 120

@description('How far event time may lag ingestion time, in hours.')
@minValue(1)
@maxValue(168)
param latenessHours int = 24

@description('Where a new deployment starts reading, in minutes before its first run, when it has no bootstrap (bootstrapDays 0).')
@minValue(1)
@maxValue(10080)
param firstRunLookbackMinutes int = 60

@description('Days of the workspace a new deployment learns, a slice per timer run, before it scores or alerts (DETECTOR_BOOTSTRAP_DAYS); 0 starts scoring at once against empty baselines.')
@minValue(0)
@maxValue(365)
param bootstrapDays int = 14

@description('A run stops taking new windows after this many seconds; the next run catches up.')
@minValue(10)
@maxValue(3600)
param runBudgetSeconds int = 240

@description('Alert records (for feedback) and delivery records older than this many days are deleted, a slice each run; at least 8.')
@minValue(8)
@maxValue(3650)
param retentionDays int = 90

@description('Allow rules meant to hold longer than this many days after they were added are ignored by the timer; keep it equal to DETECTOR_ALLOW_MAX_DAYS where operators run `detector allow add`.')
@minValue(1)
@maxValue(3650)
param allowMaxDays int = 180

@description('Log Analytics query endpoint (https://api.loganalytics.azure.us/v1 in Azure Government).')
param logAnalyticsEndpoint string = 'https://api.loganalytics.io/v1'

@description('HTTPS URL of a generic webhook for alerts (stored in Key Vault; empty: none).')
@secure()
param notifyWebhookUrl string = ''

@description('Key that signs webhook requests with HMAC-SHA256 (stored in Key Vault; required with a webhook URL).')
@secure()
param notifyWebhookSecret string = ''

@description('While rotating the webhook key: the key being replaced. Requests then carry a signature with each key, so receivers can switch at any time. Empty afterwards.')
@secure()
param notifyWebhookSecretPrevious string = ''

@description('Microsoft Teams webhook URL for alerts (stored in Key Vault; empty: none).')
@secure()
param notifyTeamsUrl string = ''

@description('Slack incoming-webhook URL for alerts (stored in Key Vault; empty: none).')
@secure()
param notifySlackUrl string = ''

@description('Let notifier destinations be private or loopback addresses (a receiver inside the app\'s virtual network). Link-local addresses, the metadata service\'s among them, are refused regardless.')
param notifyAllowPrivateAddresses bool = false

@description('Deliver every alert to Microsoft Sentinel as well: a custom table (AppServiceDetectorAlerts_CL) in the workspace, a data collection rule the notifier uploads to with its identity (Monitoring Metrics Publisher on that rule alone). Turns the notifier on even without another destination.')
param enableSentinelDestination bool = false

@description('Microsoft Sentinel is enabled on the workspace: also deploy the analytic rule that makes an incident of each burst of alerts (needs enableSentinelDestination).')
param sentinelAnalyticRule bool = false

@description('Days the alert table keeps rows in the analytics tier (queried by the analytic rule and analysts).')
@minValue(4)
@maxValue(730)
param sentinelTableRetentionDays int = 90

@description('Days the alert table keeps rows in all, long-term retention included; at least sentinelTableRetentionDays.')
@minValue(4)
@maxValue(4383)
param sentinelTableTotalRetentionDays int = 365

@description('Upper bound of Function App instances.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each Function App instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var rgName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var ownWorkspaceName = 'log-${resourceToken}'
// Known before anything is deployed, so it can decide a module's scope.
var ownWorkspaceId = '${subscription().id}/resourceGroups/${rgName}/providers/Microsoft.OperationalInsights/workspaces/${ownWorkspaceName}'
var workspaceResourceId = empty(logAnalyticsWorkspaceResourceId) ? ownWorkspaceId : logAnalyticsWorkspaceResourceId
var workspaceParts = split(workspaceResourceId, '/')
var secretNames = {
  webhookUrl: 'notify-webhook-url'
  webhookSecret: 'notify-webhook-secret'
  webhookSecretPrevious: 'notify-webhook-secret-previous'
  teamsUrl: 'notify-teams-url'
  slackUrl: 'notify-slack-url'
}
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'

resource newResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (createResourceGroup) {
  name: rgName
  location: location
  tags: tags
}

// Every resource-group module is scoped by the group's name, so that it works whether the group
// was created here or already existed; the first modules wait for it, the others follow them.

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: resourceGroup(rgName)
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
  dependsOn: [
    newResourceGroup
  ]
}

module ownWorkspace 'modules/log-analytics.bicep' = {
  name: 'log-analytics'
  scope: resourceGroup(rgName)
  params: {
    name: ownWorkspaceName
    location: location
    tags: tags
  }
  dependsOn: [
    newResourceGroup
  ]
}

module appInsights 'modules/app-insights.bicep' = {
  name: 'app-insights'
  scope: resourceGroup(rgName)
  params: {
    name: 'appi-${resourceToken}'
    location: location
    tags: tags
    workspaceId: ownWorkspace.outputs.id
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: resourceGroup(rgName)
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package'
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: resourceGroup(rgName)
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    secretNames: secretNames
    notifyWebhookUrl: notifyWebhookUrl
    notifyWebhookSecret: notifyWebhookSecret
    notifyWebhookSecretPrevious: notifyWebhookSecretPrevious
    notifyTeamsUrl: notifyTeamsUrl
    notifySlackUrl: notifySlackUrl
  }
}

// Read access to the workspace's logs, on that workspace alone.
module workspaceReader 'modules/workspace-role.bicep' = {
  name: 'workspace-reader-${resourceToken}'
  scope: resourceGroup(workspaceParts[2], workspaceParts[4])
  params: {
    workspaceName: workspaceParts[8]
    principalId: identity.outputs.principalId
    roleDefinitionId: logAnalyticsReader
    assignmentDescription: 'App Service detector ${environmentName}: queries AzureActivity and App Service audit logs'
  }
  dependsOn: [
    ownWorkspace
  ]
}

// The operators' `detector` commands: the tables and queues, and the workspace's logs.
module operatorRoles 'modules/operator-roles.bicep' = if (!empty(operatorsPrincipalId)) {
  name: 'operator-roles-${resourceToken}'
  scope: resourceGroup(rgName)
  params: {
    storageAccountName: storage.outputs.name
    principalId: operatorsPrincipalId
    principalType: operatorsPrincipalType
  }
}

module operatorsWorkspaceReader 'modules/workspace-role.bicep' = if (!empty(operatorsPrincipalId)) {
  name: 'operators-workspace-reader-${resourceToken}'
  scope: resourceGroup(workspaceParts[2], workspaceParts[4])
  params: {
    workspaceName: workspaceParts[8]
    principalId: operatorsPrincipalId
    principalType: operatorsPrincipalType
    roleDefinitionId: logAnalyticsReader
    assignmentDescription: 'App Service detector ${environmentName}: operators run detector status, backfill and export'
  }
  dependsOn: [
    ownWorkspace
  ]
}

// Sentinel: the alert table, its data collection rule and the app's right to upload to it, in the
// workspace's resource group and region; the analytic rule only where Sentinel is on.
module sentinelAlerts 'modules/sentinel-alerts.bicep' = if (enableSentinelDestination) {
  name: 'sentinel-alerts-${resourceToken}'
  scope: resourceGroup(workspaceParts[2], workspaceParts[4])
  params: {
    workspaceName: workspaceParts[8]
    location: workspaceReader.outputs.location
    ruleName: 'dcr-appservice-detector-${resourceToken}'
    tags: tags
    principalId: identity.outputs.principalId
    retentionInDays: sentinelTableRetentionDays
    totalRetentionInDays: sentinelTableTotalRetentionDays
  }
}

module sentinelRule 'modules/sentinel-rule.bicep' = if (enableSentinelDestination && sentinelAnalyticRule) {
  name: 'sentinel-rule-${resourceToken}'
  scope: resourceGroup(workspaceParts[2], workspaceParts[4])
  params: {
    workspaceName: workspaceParts[8]
  }
  dependsOn: [
    sentinelAlerts
  ]
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: resourceGroup(rgName)
  params: {
    name: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    tableNames: storage.outputs.tableNames
    alertQueueName: storage.outputs.alertQueueName
    applicationInsightsName: appInsights.outputs.name
    workspaceCustomerId: workspaceReader.outputs.customerId
    logAnalyticsEndpoint: logAnalyticsEndpoint
    schedule: detectorSchedule
    windowMinutes: windowMinutes
    holdMinutes: holdMinutes
    settleSeconds: settleSeconds
    latenessHours: latenessHours
    firstRunLookbackMinutes: firstRunLookbackMinutes
    bootstrapDays: bootstrapDays
    runBudgetSeconds: runBudgetSeconds
    retentionDays: retentionDays
    allowMaxDays: allowMaxDays
    alertThreshold: alertThreshold
    keyVaultUri: keyVault.outputs.uri
    secretNames: secretNames
    notify: {
      webhookUrl: !empty(notifyWebhookUrl)
      webhookSecret: !empty(notifyWebhookSecret)
      webhookSecretPrevious: !empty(notifyWebhookSecretPrevious)
      teamsUrl: !empty(notifyTeamsUrl)
      slackUrl: !empty(notifySlackUrl)
      allowPrivateAddresses: notifyAllowPrivateAddresses
    }
    sentinel: {
      enabled: enableSentinelDestination
      endpoint: enableSentinelDestination ? sentinelAlerts.outputs.endpoint : ''
      ruleId: enableSentinelDestination ? sentinelAlerts.outputs.immutableId : ''
      stream: enableSentinelDestination ? sentinelAlerts.outputs.streamName : ''
    }
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module monitoring 'modules/monitoring.bicep' = if (enableMonitoring) {
  name: 'monitoring'
  scope: resourceGroup(rgName)
  params: {
    location: location
    tags: tags
    workspaceId: ownWorkspace.outputs.id
    name: functionApp.outputs.name
    actionGroupId: monitoringActionGroupId
  }
}

module activityLog 'modules/activity-log.bicep' = if (enableActivityLogExport) {
  name: 'activity-log-${resourceToken}'
  params: {
    workspaceId: workspaceResourceId
  }
  dependsOn: [
    ownWorkspace
  ]
}

module auditLogPolicy 'modules/audit-log-policy.bicep' = if (enableAuditLogPolicy) {
  name: 'audit-log-policy-${resourceToken}'
  params: {
    workspaceId: workspaceResourceId
    location: location
    assignmentName: 'appservice-detector-${resourceToken}'
  }
  dependsOn: [
    ownWorkspace
  ]
}

@description('Azure region of the deployment.')
output AZURE_LOCATION string = location

@description('Tenant of the deployment.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Resource group holding the detector.')
output AZURE_RESOURCE_GROUP string = rgName

@description('Name of the Function App.')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Resource id of the Function App.')
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id

@description('Name of the storage account (tables and queues).')
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name

@description('Name of the key vault holding the notification secrets.')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('Client id of the detector\'s managed identity.')
output AZURE_DETECTOR_IDENTITY_CLIENT_ID string = identity.outputs.clientId

@description('Resource id of the workspace the detector queries.')
output LOG_ANALYTICS_WORKSPACE_RESOURCE_ID string = workspaceResourceId

// The app settings the `detector` commands read, under their own names: in a shell,
// `set -a; eval "$(azd env get-values)"; set +a` is all a laptop needs (docs/deploy.md).

@description('The workspace\'s id (a GUID), as the app setting LOG_ANALYTICS_WORKSPACE_ID.')
output LOG_ANALYTICS_WORKSPACE_ID string = workspaceReader.outputs.customerId

@description('The Log Analytics query endpoint, as the app setting LOG_ANALYTICS_ENDPOINT.')
output LOG_ANALYTICS_ENDPOINT string = logAnalyticsEndpoint

@description('The table endpoint, as the app setting DETECTOR_STORAGE__tableServiceUri.')
output DETECTOR_STORAGE__tableServiceUri string = storage.outputs.tableEndpoint

@description('The queue endpoint, as the app setting DETECTOR_STORAGE__queueServiceUri.')
output DETECTOR_STORAGE__queueServiceUri string = storage.outputs.queueEndpoint

@description('The blob endpoint of the detector\'s storage account (the host\'s blobs and the deployment package).')
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint

@description('The store the operators\' commands use without --store: the tables of the settings above.')
output DETECTOR_STORE string = 'table'

@description('Resource id of the data collection rule the notifier uploads alerts to (empty without the Sentinel destination).')
output SENTINEL_DATA_COLLECTION_RULE_ID string = enableSentinelDestination ? sentinelAlerts.outputs.id : ''
