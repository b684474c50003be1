// One detector, many subscriptions: send another subscription's logs to the detector's
// workspace without a second Function App (a second detector would read the same workspace and
// send every alert twice). Deploy it once per subscription to cover, from that subscription:
//
//   az deployment sub create --subscription <other-subscription> --location <region> \
//     --template-file infra/subscription-logs.bicep \
//     --parameters workspaceResourceId=<the detector's workspace resource id>
//
// It makes the subscription diagnostic setting that sends the Activity Log's Administrative
// category to the workspace, and, with enableAuditLogPolicy, assigns the App Service audit-log
// policy to that subscription too. Nothing else: no identity, no storage, no app.
//
// NOT compiled with the Bicep CLI on the machines that wrote it (none is available offline).

targetScope = 'subscription'

@description('Resource id of the Log Analytics workspace the detector queries (`azd env get-value LOG_ANALYTICS_WORKSPACE_RESOURCE_ID`); it may be in another subscription of the tenant.')
param workspaceResourceId string

@description('Send this subscription\'s Activity Log to the workspace (leave off where it is sent there already, e.g. by Microsoft Sentinel\'s Azure Activity connector: every row would arrive twice).')
param enableActivityLogExport bool = true

@description('Also assign the policy that turns on App Service audit logs for every web app and slot of this subscription, sending them to the workspace.')
param enableAuditLogPolicy bool = false

@description('Azure region of the policy assignment\'s managed identity (only with enableAuditLogPolicy).')
param location string = deployment().location

@description('Name of the subscription diagnostic setting.')
param diagnosticSettingName string = 'appservice-detector-activity-log'

var token = toLower(uniqueString(subscription().id, workspaceResourceId))

module activityLog 'modules/activity-log.bicep' = if (enableActivityLogExport) {
  name: 'activity-log-${token}'
  params: {
    name: diagnosticSettingName
    workspaceId: workspaceResourceId
  }
}

module auditLogPolicy 'modules/audit-log-policy.bicep' = if (enableAuditLogPolicy) {
  name: 'audit-log-policy-${token}'
  params: {
    workspaceId: workspaceResourceId
    location: location
    assignmentName: 'appservice-detector-${token}'
  }
}

@description('Resource id of the Activity Log diagnostic setting (empty when it was not made).')
output ACTIVITY_LOG_SETTING_ID string = enableActivityLogExport ? activityLog.outputs.id : ''

@description('Name of the audit-log policy assignment (empty without enableAuditLogPolicy).')
output AUDIT_LOG_POLICY_ASSIGNMENT string = enableAuditLogPolicy ? auditLogPolicy.outputs.name : ''
