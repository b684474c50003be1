"""Azure Functions entry point: wiring only, the logic lives in `detectors/`.

The timer-triggered detector and the queue-triggered notifier are wired here once the
Log Analytics source, the Table Storage store and the alert queue exist (issue #3); until
then the app declares no functions, so a deployment of it does nothing rather than
something half-built.
"""

import azure.functions as func

app = func.FunctionApp()
