// Optional: stream this subscription's Activity Log (the Administrative category, where every
// App Service write, delete and action lands) to the workspace the detector queries.
// Leave it off when the subscription already sends its Activity Log there (Microsoft Sentinel's
// Azure Activity connector does exactly this): a second setting would duplicate every row.

targetScope = 'subscription'

@description('Name of the subscription diagnostic setting.')
param name string = 'appservice-detector-activity-log'

@description('Resource id of the Log Analytics workspace that receives the Activity Log.')
param workspaceId string

resource setting 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: name
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'Administrative'
        enabled: true
      }
    ]
  }
}

@description('Name of the diagnostic setting.')
output name string = setting.name

@description('Resource id of the diagnostic setting.')
output id string = setting.id
