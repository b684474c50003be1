// Optional: an Azure Policy initiative that turns on the AppServiceAuditLogs (Kudu, FTP and
// Web Deploy logins) and AppServiceFileAuditLogs (file changes, e.g. under App_Data/jobs) diagnostic
// categories for every web app and slot in the subscription, sending them to the workspace the
// detector queries. The WebJob detection has no data without them.
//
// One custom definition, parameterised by category, is used twice: each category gets a diagnostic
// setting of its own, so a plan tier that lacks file auditing fails only that one setting and the
// login audit still flows. Function and Logic apps are left out (no WebJobs). An existing setting
// that already sends the category (or allLogs) to the same workspace counts as compliant.
//
// Declared here rather than assigning a built-in, so what it does is in this repository and the
// offline checks see it. Existing apps are remediated once per deployment; new ones on creation.

targetScope = 'subscription'

@description('Resource id of the Log Analytics workspace the diagnostic settings send to.')
param workspaceId string

@description('Azure region of the policy assignment\'s managed identity.')
param location string

@description('Name of the policy assignment (unique in the subscription).')
param assignmentName string

@description('Stamp that makes each deployment\'s remediation tasks new ones (a finished task cannot be re-run).')
param remediationStamp string = utcNow('yyyyMMddHHmmss')

var monitoringContributor = '749f88d5-cbae-40b8-bcfc-e573ddc772fa'
var logAnalyticsContributor = '92aaf0da-9dab-42b6-94a3-d43ce8d16293'
var categories = [
  'AppServiceAuditLogs'
  'AppServiceFileAuditLogs'
]
var workspaceParts = split(workspaceId, '/')

resource definition 'Microsoft.Authorization/policyDefinitions@2023-04-01' = {
  name: 'appservice-detector-diagnostic-category'
  properties: {
    policyType: 'Custom'
    mode: 'Indexed'
    displayName: 'App Service: send one diagnostic log category to a Log Analytics workspace'
    description: 'Deploys a diagnostic setting that sends the given log category of web apps and slots (not Function or Logic apps) to the workspace, unless a setting already sends it (or allLogs) there.'
    metadata: {
      category: 'Monitoring'
    }
    parameters: {
      workspaceId: {
        type: 'String'
        metadata: {
          displayName: 'Log Analytics workspace'
          description: 'Resource id of the workspace that receives the logs.'
          strongType: 'omsWorkspace'
          assignPermissions: true
        }
      }
      logCategory: {
        type: 'String'
        allowedValues: categories
        metadata: {
          displayName: 'Log category'
          description: 'The App Service resource log category to enable.'
        }
      }
      diagnosticSettingName: {
        type: 'String'
        metadata: {
          displayName: 'Diagnostic setting name'
          description: 'Name of the diagnostic setting the policy creates.'
        }
      }
      effect: {
        type: 'String'
        allowedValues: [
          'DeployIfNotExists'
          'AuditIfNotExists'
          'Disabled'
        ]
        defaultValue: 'DeployIfNotExists'
        metadata: {
          displayName: 'Effect'
          description: 'DeployIfNotExists creates the setting; AuditIfNotExists only reports.'
        }
      }
    }
    policyRule: {
      if: {
        allOf: [
          {
            field: 'type'
            in: [
              'Microsoft.Web/sites'
              'Microsoft.Web/sites/slots'
            ]
          }
          {
            field: 'kind'
            notContains: 'functionapp'
          }
          {
            field: 'kind'
            notContains: 'workflowapp'
          }
        ]
      }
      then: {
        effect: '[parameters(\'effect\')]'
        details: {
          type: 'Microsoft.Insights/diagnosticSettings'
          evaluationDelay: 'AfterProvisioning'
          roleDefinitionIds: [
            '/providers/Microsoft.Authorization/roleDefinitions/${monitoringContributor}'
            '/providers/Microsoft.Authorization/roleDefinitions/${logAnalyticsContributor}'
          ]
          existenceCondition: {
            allOf: [
              {
                field: 'Microsoft.Insights/diagnosticSettings/workspaceId'
                equals: '[parameters(\'workspaceId\')]'
              }
              {
                count: {
                  field: 'Microsoft.Insights/diagnosticSettings/logs[*]'
                  where: {
                    allOf: [
                      {
                        field: 'Microsoft.Insights/diagnosticSettings/logs[*].enabled'
                        equals: 'true'
                      }
                      {
                        anyOf: [
                          {
                            field: 'Microsoft.Insights/diagnosticSettings/logs[*].category'
                            equals: '[parameters(\'logCategory\')]'
                          }
                          {
                            field: 'Microsoft.Insights/diagnosticSettings/logs[*].categoryGroup'
                            equals: 'allLogs'
                          }
                        ]
                      }
                    ]
                  }
                }
                greaterOrEquals: 1
              }
            ]
          }
          deployment: {
            properties: {
              mode: 'incremental'
              // A template deployed into the app's resource group. Both resources are declared
              // and the condition picks one; both names are well formed for either type.
              template: {
                '$schema': 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#'
                contentVersion: '1.0.0.0'
                parameters: {
                  resourceName: {
                    type: 'string'
                  }
                  resourceType: {
                    type: 'string'
                  }
                  workspaceId: {
                    type: 'string'
                  }
                  logCategory: {
                    type: 'string'
                  }
                  diagnosticSettingName: {
                    type: 'string'
                  }
                }
                variables: {
                  site: '[first(split(parameters(\'resourceName\'), \'/\'))]'
                  slot: '[last(split(parameters(\'resourceName\'), \'/\'))]'
                }
                resources: [
                  {
                    condition: '[equals(toLower(parameters(\'resourceType\')), \'microsoft.web/sites\')]'
                    type: 'Microsoft.Web/sites/providers/diagnosticSettings'
                    apiVersion: '2021-05-01-preview'
                    name: '[concat(variables(\'site\'), \'/Microsoft.Insights/\', parameters(\'diagnosticSettingName\'))]'
                    properties: {
                      workspaceId: '[parameters(\'workspaceId\')]'
                      logs: [
                        {
                          category: '[parameters(\'logCategory\')]'
                          enabled: true
                        }
                      ]
                    }
                  }
                  {
                    condition: '[equals(toLower(parameters(\'resourceType\')), \'microsoft.web/sites/slots\')]'
                    type: 'Microsoft.Web/sites/slots/providers/diagnosticSettings'
                    apiVersion: '2021-05-01-preview'
                    name: '[concat(variables(\'site\'), \'/\', variables(\'slot\'), \'/Microsoft.Insights/\', parameters(\'diagnosticSettingName\'))]'
                    properties: {
                      workspaceId: '[parameters(\'workspaceId\')]'
                      logs: [
                        {
                          category: '[parameters(\'logCategory\')]'
                          enabled: true
                        }
                      ]
                    }
                  }
                ]
              }
              parameters: {
                resourceName: {
                  value: '[field(\'fullName\')]'
                }
                resourceType: {
                  value: '[field(\'type\')]'
                }
                workspaceId: {
                  value: '[parameters(\'workspaceId\')]'
                }
                logCategory: {
                  value: '[parameters(\'logCategory\')]'
                }
                diagnosticSettingName: {
                  value: '[parameters(\'diagnosticSettingName\')]'
                }
              }
            }
          }
        }
      }
    }
  }
}

resource initiative 'Microsoft.Authorization/policySetDefinitions@2023-04-01' = {
  name: 'appservice-detector-audit-logs'
  properties: {
    policyType: 'Custom'
    displayName: 'App Service audit logs for the credential and WebJob detector'
    description: 'Sends AppServiceAuditLogs and AppServiceFileAuditLogs of every web app and slot to one Log Analytics workspace.'
    metadata: {
      category: 'Monitoring'
    }
    parameters: {
      workspaceId: {
        type: 'String'
        metadata: {
          displayName: 'Log Analytics workspace'
          strongType: 'omsWorkspace'
        }
      }
    }
    policyDefinitions: [
      {
        policyDefinitionId: definition.id
        policyDefinitionReferenceId: categories[0]
        parameters: {
          workspaceId: {
            value: '[parameters(\'workspaceId\')]'
          }
          logCategory: {
            value: categories[0]
          }
          diagnosticSettingName: {
            value: 'appservice-detector-audit'
          }
        }
      }
      {
        policyDefinitionId: definition.id
        policyDefinitionReferenceId: categories[1]
        parameters: {
          workspaceId: {
            value: '[parameters(\'workspaceId\')]'
          }
          logCategory: {
            value: categories[1]
          }
          diagnosticSettingName: {
            value: 'appservice-detector-file-audit'
          }
        }
      }
    ]
  }
}

resource assignment 'Microsoft.Authorization/policyAssignments@2023-04-01' = {
  name: assignmentName
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    displayName: 'App Service audit logs to the detector\'s workspace'
    description: 'Assigned by the App Service credential and WebJob detector deployment.'
    policyDefinitionId: initiative.id
    enforcementMode: 'Default'
    parameters: {
      workspaceId: {
        value: workspaceId
      }
    }
  }
}

// What the remediation deployments need: writing diagnostic settings on any web app in the
// subscription (the assignment's own scope) and linking them to the workspace (that one resource).
resource siteSettingsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, assignmentName, monitoringContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringContributor)
    principalId: assignment.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'Policy ${assignmentName}: diagnostic settings on web apps and slots'
  }
}

module workspaceWriter 'workspace-role.bicep' = {
  name: 'policy-workspace-role-${uniqueString(assignmentName)}'
  scope: resourceGroup(workspaceParts[2], workspaceParts[4])
  params: {
    workspaceName: workspaceParts[8]
    principalId: assignment.identity.principalId
    roleDefinitionId: logAnalyticsContributor
    assignmentDescription: 'Policy ${assignmentName}: diagnostic settings that send to this workspace'
  }
}

resource remediations 'Microsoft.PolicyInsights/remediations@2021-10-01' = [
  for category in categories: {
    name: '${assignmentName}-${toLower(category)}-${remediationStamp}'
    properties: {
      policyAssignmentId: assignment.id
      policyDefinitionReferenceId: category
      resourceDiscoveryMode: 'ReEvaluateCompliance'
    }
    dependsOn: [
      siteSettingsWriter
      workspaceWriter
    ]
  }
]

@description('Name of the policy assignment.')
output name string = assignment.name

@description('Resource id of the policy assignment.')
output id string = assignment.id

@description('Resource id of the policy initiative.')
output initiativeId string = initiative.id
