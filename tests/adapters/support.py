"""Helpers for adapter tests: credentials and providers pointed at the ARM twin.

Callers: tests/adapters/*. The credentials are azure-identity's own classes, unmodified; only
their authority host and the CA they trust point at the twin.
"""

from __future__ import annotations

from typing import Any

from azure.identity import ClientSecretCredential

from autoscaler.cloud.aks import AksProvider
from autoscaler.cloud.aks_settings import AksSettings
from simulator.twin import ArmModel, ArmTwin

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "twin-client-secret"
FEDERATED_TOKEN = "eyJhbGciOiJSUzI1NiJ9.twin-federated-token.sig"


def fresh_model() -> ArmModel:
    model = ArmModel()
    model.secrets[CLIENT_ID] = SECRET
    model.assertions[CLIENT_ID] = FEDERATED_TOKEN
    return model


def secret_credential(twin: ArmTwin, secret: str = SECRET) -> ClientSecretCredential:
    return ClientSecretCredential(
        twin.model.tenant,
        CLIENT_ID,
        secret,
        authority=twin.url,
        connection_verify=twin.ca_file,
        disable_instance_discovery=True,
    )


def twin_settings(twin: ArmTwin, **overrides: Any) -> AksSettings:
    model = twin.model
    fields: dict[str, Any] = {
        "subscription_id": model.subscription,
        "resource_group": model.resource_group,
        "cluster_name": model.cluster,
        "arm_endpoint": twin.url,
        "authority_host": twin.url,
        "connection_verify": twin.ca_file,
    }
    fields.update(overrides)
    return AksSettings(**fields)


def twin_provider(twin: ArmTwin, **overrides: Any) -> AksProvider:
    return AksProvider(twin_settings(twin, **overrides), secret_credential(twin))
