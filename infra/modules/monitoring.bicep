// Watching the detector: a workbook and three log alert rules over what the Function App logs
// to its own workspace (workspace-based Application Insights writes AppTraces and AppRequests
// there). The timer logs one line per run (`run <id>: <outcome>; windows ...; watermark A -> B;
// events scored through C[; bootstrap ...][; poison queue N][; error: ...]`,
// detectors/runs/timer.py RunReport.line), one per alert it holds for the queue, and one per
// alert an allow rule kept off it. Every query is a file under infra/monitoring/, loaded as it
// is, so the tests check with Microsoft's KQL parser exactly what is deployed.

@description('Azure region of the workbook and the alert rules.')
param location string

@description('Tags applied to the workbook and the alert rules.')
param tags object = {}

@description('Resource id of the workspace that holds the Function App\'s telemetry (AppTraces, AppRequests).')
param workspaceId string

@description('Name prefix of the alert rules, e.g. the Function App\'s name.')
param name string

@description('Resource id of an action group the alert rules notify (empty: the alerts show in Azure Monitor only).')
param actionGroupId string = ''

var queries = {
  runs: loadTextContent('../monitoring/runs.kql')
  recentRuns: loadTextContent('../monitoring/recent-runs.kql')
  watermarkLag: loadTextContent('../monitoring/watermark-lag.kql')
  alerts: loadTextContent('../monitoring/alerts.kql')
  allowHits: loadTextContent('../monitoring/allow-hits.kql')
  poison: loadTextContent('../monitoring/poison.kql')
}
var rules = [
  {
    key: 'failed-runs'
    displayName: 'App Service detector: a timer run failed'
    description: 'A detector_timer run failed (its own line says so, or the invocation failed). The next run resumes from the checkpoint; read the run\'s error in AppTraces, or run `detector run` by hand.'
    severity: 2
    query: loadTextContent('../monitoring/failed-runs-alert.kql')
  }
  {
    key: 'watermark-lag'
    displayName: 'App Service detector: more than an hour behind'
    description: 'The rows the timer read are more than an hour behind, or no run reported in six hours: activity goes unscored. `detector status` says why.'
    severity: 1
    query: loadTextContent('../monitoring/lag-alert.kql')
  }
  {
    key: 'poison-queue'
    displayName: 'App Service detector: alerts on the poison queue'
    description: 'The notifier failed to deliver alerts five times; they wait on the poison queue. `detector poison list`, fix the destination, `detector poison requeue --all`.'
    severity: 2
    query: loadTextContent('../monitoring/poison-alert.kql')
  }
]
var kql = {
  version: 'KqlItem/1.0'
  queryType: 0
  resourceType: 'microsoft.operationalinsights/workspaces'
  crossComponentResources: [
    workspaceId
  ]
  timeContext: {
    durationMs: 604800000
  }
  size: 0
}
var workbook = {
  version: 'Notebook/1.0'
  isLocked: false
  fallbackResourceIds: [
    workspaceId
  ]
  items: [
    {
      type: 1
      name: 'about'
      content: {
        json: '## App Service detector\nRuns of the timer, how far behind they are, the alerts they sent and those allow rules kept back, and alerts waiting on the poison queue (`detector poison`). The last 7 days; `detector status` checks the rest.'
      }
    }
    {
      type: 3
      name: 'runs'
      content: union(kql, {
        title: 'Runs by outcome'
        query: queries.runs
        visualization: 'barchart'
      })
    }
    {
      type: 3
      name: 'watermark-lag'
      content: union(kql, {
        title: 'Watermark lag (minutes)'
        query: queries.watermarkLag
        visualization: 'timechart'
      })
    }
    {
      type: 3
      name: 'alerts'
      content: union(kql, {
        title: 'Alerts by detection and severity'
        query: queries.alerts
        visualization: 'table'
      })
    }
    {
      type: 3
      name: 'allow-hits'
      content: union(kql, {
        title: 'Alerts kept back by allow rules'
        query: queries.allowHits
        visualization: 'table'
      })
    }
    {
      type: 3
      name: 'poison'
      content: union(kql, {
        title: 'Alerts on the poison queue'
        query: queries.poison
        visualization: 'timechart'
      })
    }
    {
      type: 3
      name: 'recent-runs'
      content: union(kql, {
        title: 'Last runs'
        query: queries.recentRuns
        visualization: 'table'
      })
    }
  ]
}

resource dashboard 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, workspaceId, 'appservice-detector-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'App Service detector'
    category: 'workbook'
    sourceId: workspaceId
    serializedData: string(workbook)
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in rules: {
    name: '${name}-${rule.key}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        workspaceId
      ]
      evaluationFrequency: 'PT15M'
      windowSize: 'PT30M'
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: true
      actions: {
        actionGroups: empty(actionGroupId) ? [] : [
          actionGroupId
        ]
      }
    }
  }
]

@description('Name of the workbook (a GUID).')
output name string = dashboard.name

@description('Resource id of the workbook.')
output id string = dashboard.id
