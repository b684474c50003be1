"""Client applications that call ARM, by the `appid` their tokens carry."""

from __future__ import annotations

from dataclasses import dataclass

ARM_V1 = "https://management.core.windows.net/"


@dataclass(frozen=True, kw_only=True, slots=True)
class Client:
    """A client application: its name, app id and the audience its ARM tokens name."""

    name: str
    app_id: str
    audience: str = ARM_V1


AZURE_CLI = Client(name="Azure CLI", app_id="04b07795-8ddb-461a-bbee-02f9e1bf7b46")
AZURE_POWERSHELL = Client(name="Azure PowerShell", app_id="1950a258-227b-4e31-a9cf-717495945fc2")
PORTAL = Client(name="Azure Portal", app_id="c44b4083-3bb0-49c1-b47d-974e53cbdf3c")
VISUAL_STUDIO = Client(name="Visual Studio", app_id="04f0c124-f2bc-4f59-8241-bf6df9866bbd")
VISUAL_STUDIO_LEGACY = Client(
    name="Visual Studio (older)", app_id="872cd9fa-d31f-45e0-9eab-6e460a02d1f1"
)
VS_CODE = Client(name="Visual Studio Code", app_id="aebc6443-996d-45c2-90f0-388ff96faa56")
CLOUD_SHELL = Client(name="Azure Cloud Shell", app_id="2233b157-f44d-4812-b777-036cdaf9a96e")
