"""What a site's wwwroot holds: the files a deployment rewrites, by stack."""

from __future__ import annotations

import random
from collections.abc import Sequence

_EXTENSIONS = (
    "Caching.Abstractions",
    "Caching.Memory",
    "Configuration",
    "Configuration.Abstractions",
    "Configuration.Binder",
    "Configuration.EnvironmentVariables",
    "Configuration.Json",
    "DependencyInjection",
    "DependencyInjection.Abstractions",
    "Diagnostics.HealthChecks",
    "Http",
    "Http.Polly",
    "Logging",
    "Logging.Abstractions",
    "Options",
    "Primitives",
)
_PACKAGES = (
    "Azure.Core",
    "Azure.Identity",
    "Azure.Storage.Blobs",
    "Azure.Storage.Common",
    "Azure.Storage.Queues",
    "Azure.Messaging.ServiceBus",
    "Azure.Security.KeyVault.Secrets",
    "Azure.Extensions.AspNetCore.Configuration.Secrets",
    "Microsoft.ApplicationInsights",
    "Microsoft.ApplicationInsights.AspNetCore",
    "Microsoft.Identity.Client",
    "Microsoft.Identity.Client.Extensions.Msal",
    "Microsoft.Identity.Web",
    "Microsoft.IdentityModel.Abstractions",
    "Microsoft.IdentityModel.JsonWebTokens",
    "Microsoft.IdentityModel.Logging",
    "Microsoft.IdentityModel.Tokens",
    "System.IdentityModel.Tokens.Jwt",
    "Microsoft.EntityFrameworkCore",
    "Microsoft.EntityFrameworkCore.Relational",
    "Microsoft.EntityFrameworkCore.SqlServer",
    "Microsoft.Data.SqlClient",
    "Npgsql",
    "StackExchange.Redis",
    "Pipelines.Sockets.Unofficial",
    "AutoMapper",
    "MediatR",
    "MediatR.Contracts",
    "FluentValidation",
    "Polly",
    "Polly.Core",
    "Serilog",
    "Serilog.AspNetCore",
    "Serilog.Sinks.Console",
    "Serilog.Sinks.ApplicationInsights",
    "Swashbuckle.AspNetCore.Swagger",
    "Swashbuckle.AspNetCore.SwaggerGen",
    "Swashbuckle.AspNetCore.SwaggerUI",
    "Microsoft.OpenApi",
    "Newtonsoft.Json",
    "Dapper",
    "Humanizer",
    "NodaTime",
    "CsvHelper",
    "Grpc.Net.Client",
    "Google.Protobuf",
    "Hangfire.Core",
    "System.Memory.Data",
    "System.ClientModel",
    "Microsoft.Bcl.AsyncInterfaces",
)
_PLATFORM_SPECIFIC = (
    "System.Diagnostics.EventLog",
    "System.Security.Cryptography.Pkcs",
    "System.Runtime.Caching",
    "Microsoft.Data.SqlClient",
)
_CULTURES = ("de", "es", "fr", "it", "ja", "ko", "pt-BR", "ru", "zh-Hans", "zh-Hant")
_NODE_MODULES = (
    "express",
    "body-parser",
    "cookie-parser",
    "cors",
    "helmet",
    "morgan",
    "dotenv",
    "jsonwebtoken",
    "mssql",
    "tedious",
    "ioredis",
    "axios",
    "lodash",
    "dayjs",
    "uuid",
    "winston",
    "joi",
    "applicationinsights",
    "@azure/identity",
    "@azure/storage-blob",
    "@azure/service-bus",
    "@azure/keyvault-secrets",
    "debug",
    "ms",
    "qs",
    "mime",
    "send",
    "serve-static",
)


def site_content(
    rng: random.Random,
    *,
    assembly: str,
    component: str,
    windows: bool,
    functions: Sequence[str],
    continuous_jobs: Sequence[str],
    triggered_jobs: Sequence[str],
) -> tuple[str, ...]:
    """The relative paths under wwwroot of one app, as its build output lays them out."""
    if component == "func":
        files = [
            "host.json",
            f"bin/{assembly}.dll",
            f"bin/{assembly}.pdb",
            "bin/extensions.json",
            "bin/functions.metadata",
        ]
        files += [f"bin/{name}.dll" for name in _dotnet_dependencies(rng, 15, 40)]
        files += [f"{fn}/function.json" for fn in functions]
    elif windows or rng.random() < 0.4:
        files = [
            f"{assembly}.dll",
            f"{assembly}.pdb",
            f"{assembly}.deps.json",
            f"{assembly}.runtimeconfig.json",
            "appsettings.json",
            "appsettings.Production.json",
            "web.config",
        ]
        files += [f"{name}.dll" for name in _dotnet_dependencies(rng, 35, 80)]
        files += [
            f"runtimes/{runtime}/lib/net8.0/{name}.dll"
            for runtime in ("win", "unix")
            for name in _PLATFORM_SPECIFIC
        ]
        files += [
            f"{culture}/Humanizer.resources.dll"
            for culture in rng.sample(_CULTURES, rng.randint(0, len(_CULTURES)))
        ]
        if component == "web":
            files += [
                "wwwroot/css/site.css",
                "wwwroot/js/site.js",
                "wwwroot/favicon.ico",
                "wwwroot/lib/bootstrap/dist/css/bootstrap.min.css",
                "wwwroot/lib/bootstrap/dist/js/bootstrap.bundle.min.js",
                "wwwroot/lib/jquery/dist/jquery.min.js",
            ]
    elif rng.random() < 0.5:
        files = [
            "package.json",
            "package-lock.json",
            "dist/main.js",
            "dist/main.js.map",
            "dist/routes/index.js",
            "dist/routes/health.js",
            "dist/services/db.js",
            "dist/services/queue.js",
            "dist/middleware/auth.js",
            "public/index.html",
            "public/static/app.css",
            "public/static/app.js",
        ]
        for module in rng.sample(_NODE_MODULES, rng.randint(12, len(_NODE_MODULES))):
            leaf = module.rsplit("/", 1)[-1]
            files += [
                f"node_modules/{module}/package.json",
                f"node_modules/{module}/index.js",
                f"node_modules/{module}/lib/{leaf}.js",
                f"node_modules/{module}/README.md",
            ]
    else:
        files = [
            "app.py",
            "wsgi.py",
            "requirements.txt",
            "app/__init__.py",
            "app/routes.py",
            "app/models.py",
            "app/services.py",
            "app/auth.py",
            "app/templates/base.html",
            "app/templates/index.html",
            "static/css/main.css",
            "static/js/main.js",
            "migrations/env.py",
            "migrations/alembic.ini",
        ]
        files += [
            f"migrations/versions/{rng.getrandbits(48):012x}_revision.py"
            for _ in range(rng.randint(3, 15))
        ]
    for job in continuous_jobs:
        files += [
            f"App_Data/jobs/continuous/{job}/run.cmd",
            f"App_Data/jobs/continuous/{job}/settings.job",
            f"App_Data/jobs/continuous/{job}/{assembly}.Jobs.dll",
        ]
    for job in triggered_jobs:
        files += [
            f"App_Data/jobs/triggered/{job}/run.cmd",
            f"App_Data/jobs/triggered/{job}/settings.job",
        ]
    return tuple(files)


def _dotnet_dependencies(rng: random.Random, low: int, high: int) -> list[str]:
    names = [f"Microsoft.Extensions.{name}" for name in _EXTENSIONS] + list(_PACKAGES)
    return sorted(rng.sample(names, min(len(names), rng.randint(low, high))))
