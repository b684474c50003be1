// The detector's Function App on the Flex Consumption plan (Linux, Python 3.11), running as a
// user-assigned managed identity, with every app setting the code reads.
//
// Setting names are exactly detectors.settings.app.APP_SETTINGS (tests/test_infra.py holds the
// two in step). DETECTOR_STORAGE itself (a connection string) is never written: it is the local
// path to Azurite; in Azure, storage is reached identity-based through DETECTOR_STORAGE__*.

@description('Name of the Function App (globally unique host name).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('Service name in azure.yaml; azd finds the app to deploy to by this tag.')
param azdServiceName string = 'detector'

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Name of the storage account (host storage, tables and queues).')
param storageAccountName string

@description('Blob container the app package is deployed to.')
param deploymentContainerName string

@description('Names of the detector\'s tables: baselines, state, deliveries, allowRules.')
param tableNames object

@description('Name of the alert queue.')
param alertQueueName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Customer id (GUID) of the Log Analytics workspace to query.')
param workspaceCustomerId string

@description('Log Analytics query endpoint (differs in sovereign clouds).')
param logAnalyticsEndpoint string

@description('NCRONTAB schedule (six fields, UTC) of the detection timer.')
param schedule string

@description('Slice of event time one timer step scores, in minutes.')
param windowMinutes int

@description('Minutes a slice of event time waits for its late rows before it is scored.')
param holdMinutes int

@description('Rows ingested this recently (seconds) are left for the next run.')
param settleSeconds int

@description('How far event time may lag ingestion time, in hours.')
param latenessHours int

@description('Where a new deployment starts reading, in minutes before the first run.')
param firstRunLookbackMinutes int

@description('Days of the workspace a new deployment learns before it scores anything (0: none).')
param bootstrapDays int

@description('A run stops taking new windows after this many seconds.')
param runBudgetSeconds int

@description('Alert and delivery records older than this many days are deleted.')
param retentionDays int

@description('Allow rules meant to hold longer than this many days are ignored.')
param allowMaxDays int

@description('Findings scoring below this are not alerts.')
param alertThreshold int

@description('Vault URI of the key vault holding the notification secrets (ends with a slash).')
param keyVaultUri string

@description('Secret names, by setting: webhookUrl, webhookSecret, webhookSecretPrevious, teamsUrl, slackUrl.')
param secretNames object

@description('Which notification secrets exist in the vault (only those become app settings), and whether destinations may be private addresses.')
param notify object

@description('The Sentinel destination: enabled, and the data collection rule\'s ingestion endpoint, immutable id and stream.')
param sentinel object = {
  enabled: false
  endpoint: ''
  ruleId: ''
  stream: ''
}

@description('Upper bound of instances the plan scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Every app setting, in three groups. The names are what tests/test_infra.py compares with
// detectors.settings.app.APP_SETTINGS. (Arrays rather than an object looped over: a loop needs
// values known before deployment, and endpoints and the connection string are not.)

// The Functions host: identity-based host storage and Entra ID-authenticated telemetry.
// FUNCTIONS_EXTENSION_VERSION and FUNCTIONS_WORKER_RUNTIME are not set: on the Flex Consumption
// plan the runtime comes from functionAppConfig.runtime, and both are deprecated there.
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

// The detector (detectors/settings/app.py), plus the one detection setting (detectors/settings/detection.py)
// exposed as a parameter, DETECTOR_ALERT_THRESHOLD.
var detectorSettings = [
  {
    name: 'DETECTOR_SCHEDULE'
    value: schedule
  }
  {
    name: 'LOG_ANALYTICS_WORKSPACE_ID'
    value: workspaceCustomerId
  }
  {
    name: 'LOG_ANALYTICS_ENDPOINT'
    value: logAnalyticsEndpoint
  }
  {
    name: 'DETECTOR_STORAGE__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  {
    name: 'DETECTOR_STORAGE__queueServiceUri'
    value: storage.properties.primaryEndpoints.queue
  }
  {
    name: 'DETECTOR_STORAGE__credential'
    value: 'managedidentity'
  }
  {
    name: 'DETECTOR_STORAGE__clientId'
    value: identityClientId
  }
  {
    name: 'DETECTOR_BASELINE_TABLE'
    value: tableNames.baselines
  }
  {
    name: 'DETECTOR_STATE_TABLE'
    value: tableNames.state
  }
  {
    name: 'DETECTOR_DELIVERY_TABLE'
    value: tableNames.deliveries
  }
  {
    name: 'DETECTOR_ALLOW_TABLE'
    value: tableNames.allowRules
  }
  {
    name: 'DETECTOR_ALERT_QUEUE'
    value: alertQueueName
  }
  {
    name: 'DETECTOR_WINDOW_MINUTES'
    value: string(windowMinutes)
  }
  {
    name: 'DETECTOR_HOLD_MINUTES'
    value: string(holdMinutes)
  }
  {
    name: 'DETECTOR_SETTLE_SECONDS'
    value: string(settleSeconds)
  }
  {
    name: 'DETECTOR_LATENESS_HOURS'
    value: string(latenessHours)
  }
  {
    name: 'DETECTOR_FIRST_RUN_LOOKBACK_MINUTES'
    value: string(firstRunLookbackMinutes)
  }
  {
    name: 'DETECTOR_BOOTSTRAP_DAYS'
    value: string(bootstrapDays)
  }
  {
    name: 'DETECTOR_RUN_BUDGET_SECONDS'
    value: string(runBudgetSeconds)
  }
  {
    name: 'DETECTOR_RETENTION_DAYS'
    value: string(retentionDays)
  }
  {
    name: 'DETECTOR_ALLOW_MAX_DAYS'
    value: string(allowMaxDays)
  }
  {
    name: 'DETECTOR_ALERT_THRESHOLD'
    value: string(alertThreshold)
  }
  {
    name: 'NOTIFY_ALLOW_PRIVATE_ADDRESSES'
    value: notify.allowPrivateAddresses ? 'true' : 'false'
  }
]

// Notification destinations, as Key Vault references, only for the secrets that exist: an
// unresolvable reference would reach the code as the literal "@Microsoft.KeyVault(...)" text.
var keyVaultReference = '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/'
var webhookUrlSetting = notify.webhookUrl ? [
  {
    name: 'NOTIFY_WEBHOOK_URL'
    value: '${keyVaultReference}${secretNames.webhookUrl})'
  }
] : []
var webhookSecretSetting = notify.webhookSecret ? [
  {
    name: 'NOTIFY_WEBHOOK_SECRET'
    value: '${keyVaultReference}${secretNames.webhookSecret})'
  }
] : []
var webhookSecretPreviousSetting = notify.webhookSecretPrevious ? [
  {
    name: 'NOTIFY_WEBHOOK_SECRET_PREVIOUS'
    value: '${keyVaultReference}${secretNames.webhookSecretPrevious})'
  }
] : []
var teamsUrlSetting = notify.teamsUrl ? [
  {
    name: 'NOTIFY_TEAMS_URL'
    value: '${keyVaultReference}${secretNames.teamsUrl})'
  }
] : []
var slackUrlSetting = notify.slackUrl ? [
  {
    name: 'NOTIFY_SLACK_URL'
    value: '${keyVaultReference}${secretNames.slackUrl})'
  }
] : []

// Sentinel: where the notifier uploads alerts, signed in with the app's identity
// (DETECTOR_STORAGE__clientId); no key, so no Key Vault reference.
var sentinelSettings = sentinel.enabled ? [
  {
    name: 'DETECTOR_SENTINEL_ENDPOINT'
    value: sentinel.endpoint
  }
  {
    name: 'DETECTOR_SENTINEL_RULE_ID'
    value: sentinel.ruleId
  }
  {
    name: 'DETECTOR_SENTINEL_STREAM'
    value: sentinel.stream
  }
] : []

// With no destination the notifier would fail every alert into the poison queue: switch it
// off instead, and leave the alert queue to its other consumers.
var notifierOffSetting = !(notify.webhookUrl || notify.teamsUrl || notify.slackUrl || sentinel.enabled) ? [
  {
    name: 'AzureWebJobs.detector_notifier.Disabled'
    value: 'true'
  }
] : []

var appSettings = concat(hostSettings, detectorSettings, webhookUrlSetting, webhookSecretSetting, webhookSecretPreviousSetting, teamsUrlSetting, slackUrlSetting, sentinelSettings, notifierOffSetting)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': azdServiceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve as the user-assigned identity (the default would be a
    // system-assigned identity, which this app does not have).
    keyVaultReferenceIdentity: identityId
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Basic (user name and password) publishing off for FTP and for the SCM (Kudu) site: a stolen
// publish profile, the very thing the detector looks for, opens nothing here.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Name of the Function App.')
output name string = site.name

@description('Resource id of the Function App.')
output id string = site.id

@description('Name of the Flex Consumption plan.')
output planName string = plan.name

@description('Resource id of the Flex Consumption plan.')
output planId string = plan.id

@description('Default host name of the Function App.')
output defaultHostName string = site.properties.defaultHostName
