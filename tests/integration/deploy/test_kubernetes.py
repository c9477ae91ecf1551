"""deploy/k8s, checked without a cluster: both overlays render (``kubectl kustomize``), every core
object is valid for Kubernetes 1.30 and the newest schemas ``kubernetes-validate`` ships, every custom
resource is valid against its operator's CRD (deploy/k8s/crds), and the suite's own rules hold: each
process accepts the environment it is given, secrets come only by reference, pods are locked down,
and the broker users are the ones ``deploy.broker_users`` makes for compose."""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy.broker_users import service_users
from gateway.settings import GatewaySettings
from notifications_service.settings import NotificationsSettings
from orders_service.settings import OrdersSettings
from reports_service.settings import ReportsSettings
from scheduler_service.settings import SchedulerSettings
from shared.settings import ProcessSettings
from tests.unit.test_env_example import variables_read

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
OPERATOR_GROUPS = {"rabbitmq.com", "postgresql.cnpg.io", "keda.sh"}
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
SETTINGS: dict[str, type[ProcessSettings]] = {
    "orders": OrdersSettings,
    "orders-relay": OrdersSettings,
    "reports": ReportsSettings,
    "scheduler": SchedulerSettings,
    "notifications": NotificationsSettings,
    "gateway": GatewaySettings,
}
# read by the manifests themselves ($(VAR) in another variable) or by a library, not by a settings class
COMPOSED = {"BROKER_USERNAME", "BROKER_PASSWORD", "DATABASE_USERNAME", "DATABASE_PASSWORD"}
LIBRARY = re.compile(r"^OTEL_")
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEYS|USERNAME")
# what each referenced Secret key holds in a real cluster, for building the settings
SECRET_VALUES = {
    "internal-token": "internal-token-0123456789abcdef",
    "gateway-api-keys": "ops:ops-key-0123456789abcdef:operator",
    "console-secret": "console-secret-0123456789abcdef",
    "username": "suite-user",
    "password": "password0123456789abcdef",
}


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl (it renders deploy/k8s with its built-in kustomize) is required in CI")
        pytest.skip("kubectl is not installed")
    return kubectl


@functools.cache
def _render(overlay: str, kubectl: str) -> tuple[dict[str, Any], ...]:
    rendered = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    return tuple(document for document in yaml.safe_load_all(rendered.stdout) if document)


@pytest.fixture(params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return copy.deepcopy(list(_render(request.param, _kubectl())))


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the CRD's openAPIV3Schema for that version."""
    schemas = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                api_version = f"{crd['spec']['group']}/{version['name']}"
                schemas[(api_version, crd["spec"]["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


CRDS = _crd_schemas()


def _closed(schema: Any) -> Any:
    """The schema with unknown fields refused, as the API server's strict field validation (kubectl's
    default) refuses them, instead of dropping them silently as pruning would."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in closed and "additionalProperties" not in closed and not closed.get("x-kubernetes-preserve-unknown-fields"):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


def _pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in objects:
        if item["kind"] in ("Deployment", "Job"):
            yield item["metadata"]["name"], item["spec"]["template"]["spec"]


def _suite_deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == "Deployment" and item["metadata"]["name"] in SETTINGS}


def _named(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def test_every_core_object_is_valid_for_kubernetes_1_30_and_the_newest_release(objects: list[dict[str, Any]]) -> None:
    core = [item for item in objects if item["apiVersion"].split("/")[0] not in OPERATOR_GROUPS]
    assert {item["kind"] for item in core} >= {"Deployment", "Service", "Ingress", "NetworkPolicy", "HorizontalPodAutoscaler", "Job"}
    for version in KUBERNETES_VERSIONS:
        for item in core:
            kubernetes_validate.validate(item, version, strict=True)


def test_every_custom_resource_is_valid_against_its_operators_crd(objects: list[dict[str, Any]]) -> None:
    custom = [item for item in objects if item["apiVersion"].split("/")[0] in OPERATOR_GROUPS]
    unknown = {(item["apiVersion"], item["kind"]) for item in custom} - set(CRDS)
    assert unknown == set(), f"no CRD in deploy/k8s/crds for {unknown}"
    assert {item["kind"] for item in custom} == {
        "RabbitmqCluster",
        "User",
        "Permission",
        "TopicPermission",
        "Cluster",
        "Pooler",
        "ScaledObject",
        "TriggerAuthentication",
    }
    for item in custom:
        schema = _closed(CRDS[(item["apiVersion"], item["kind"])])
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(item), key=lambda error: list(error.path))
        assert errors == [], f"{item['kind']}/{item['metadata']['name']}: " + "; ".join(
            f"{'.'.join(map(str, error.path))}: {error.message}" for error in errors
        )


def test_the_crd_check_refuses_an_unknown_field_and_a_wrong_type() -> None:
    schema = _closed(CRDS[("rabbitmq.com/v1beta1", "RabbitmqCluster")])
    cluster = {"apiVersion": "rabbitmq.com/v1beta1", "kind": "RabbitmqCluster", "metadata": {"name": "r"}, "spec": {"replicas": 3}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(cluster)) == []
    assert list(jsonschema.Draft202012Validator(schema).iter_errors({**cluster, "spec": {"replica": 3}}))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors({**cluster, "spec": {"replicas": "three"}}))


def _environment(container: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
    """The variables the container's process sees: the ConfigMap, then its env with each Secret key
    replaced by what it holds in a cluster and each $(VAR) expanded, as the kubelet does."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "suite-config"
        environment.update(config)
    for entry in container.get("env", []):
        if "value" in entry:
            environment[entry["name"]] = re.sub(r"\$\((\w+)\)", lambda found: environment[found.group(1)], entry["value"])
        else:
            reference = entry["valueFrom"]["secretKeyRef"]
            key = reference["key"]
            environment[entry["name"]] = (
                f"postgresql://suite-user:password0123456789abcdef@{reference['name']}-rw:5432/db" if key == "uri" else SECRET_VALUES[key]
            )
    return environment


def test_each_process_accepts_the_environment_it_is_given_in_production(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _named(objects, "ConfigMap")["suite-config"]["data"]
    deployments = _suite_deployments(objects)
    assert set(deployments) == set(SETTINGS)
    for name, deployment in deployments.items():
        settings_class = SETTINGS[name]
        spec = deployment["spec"]["template"]["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            environment = _environment(container, config)
            own = {entry["name"] for entry in container.get("env", [])}
            ignored = {variable for variable in own - variables_read(settings_class) - COMPOSED if not LIBRARY.match(variable)}
            assert ignored == set(), f"{name}/{container['name']} sets variables its process does not read"
            with monkeypatch.context() as patched:
                for variable in list(os.environ):
                    patched.delenv(variable)
                for variable, value in environment.items():
                    patched.setenv(variable, value)
                settings = settings_class(_env_file=None)
            assert settings.environment == "production"
    read_anywhere = set().union(*(variables_read(settings_class) for settings_class in SETTINGS.values()))
    assert {key for key in config if not LIBRARY.match(key)} - read_anywhere == set()


def test_the_gateway_reaches_each_service_through_its_headless_service_and_resolves_it_again(objects: list[dict[str, Any]]) -> None:
    services = _named(objects, "Service")
    gateway = _suite_deployments(objects)["gateway"]["spec"]["template"]["spec"]["containers"][0]
    environment = {entry["name"]: entry.get("value") for entry in gateway["env"]}
    assert float(environment["GATEWAY_RESOLVE_EVERY_S"] or 0) > 0
    for service, port in [("orders", 8001), ("reports", 8002), ("scheduler", 8003), ("notifications", 8004)]:
        assert environment[f"GATEWAY_{service.upper()}_URLS"] == f"http://{service}-pods:{port}"
        headless = services[f"{service}-pods"]["spec"]
        assert headless["clusterIP"] == "None"
        assert headless["selector"] == {"app.kubernetes.io/name": service}


def test_orders_goes_through_the_transaction_pooler_and_polls_instead_of_listening(objects: list[dict[str, Any]]) -> None:
    pooler = _named(objects, "Pooler")["orders-db-pooler"]["spec"]
    assert pooler["pgbouncer"]["poolMode"] == "transaction"
    assert int(pooler["pgbouncer"]["parameters"]["max_prepared_statements"]) > 0
    deployments = _suite_deployments(objects)
    for name in ("orders", "orders-relay"):
        environment = {entry["name"]: entry.get("value") for entry in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "@orders-db-pooler:5432/" in str(environment["ORDERS_DATABASE_URL"])
        assert environment["ORDERS_DATABASE_LISTEN"] == "false"


def test_secrets_come_only_by_reference(objects: list[dict[str, Any]]) -> None:
    assert [item["metadata"]["name"] for item in objects if item["kind"] == "Secret"] == []
    for name, spec in _pod_specs(objects):
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            referenced = {
                entry["name"] for entry in container.get("env", []) if "valueFrom" in entry and "secretKeyRef" in entry["valueFrom"]
            }
            for entry in container.get("env", []):
                if "value" not in entry:
                    continue
                assert not SECRET_NAME.search(entry["name"]), f"{name}: {entry['name']} is a literal"
                credentials = re.search(r"://([^@/]*)@", entry["value"])
                if credentials:
                    variables = re.findall(r"\$\((\w+)\)", credentials.group(1))
                    assert credentials.group(1) == ":".join(f"$({variable})" for variable in variables), f"{name}: {entry['name']}"
                    assert set(variables) <= referenced, f"{name}: {entry['name']} takes its credentials from Secrets"


def test_every_pod_is_locked_down_with_requests_and_limits(objects: list[dict[str, Any]]) -> None:
    pods = list(_pod_specs(objects))
    assert len(pods) >= 7
    for name, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            security = container["securityContext"]
            assert (security["allowPrivilegeEscalation"], security["readOnlyRootFilesystem"]) == (False, True), name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert set(container["resources"]) == {"requests", "limits"}, name
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, name


def test_every_service_has_probes_on_its_endpoints_and_outlasts_its_drain(objects: list[dict[str, Any]]) -> None:
    for name, deployment in _suite_deployments(objects).items():
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        port = container["ports"][0]["containerPort"]
        assert container["startupProbe"]["httpGet"] == {"path": "/health/live", "port": port}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": port}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": port}, name
        # the preStop pause, then uvicorn's 20 s graceful shutdown and the consumer's 10 s drain
        pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert spec["terminationGracePeriodSeconds"] > pause + 20 + 10, name


def test_each_database_service_migrates_before_it_starts(objects: list[dict[str, Any]]) -> None:
    for name, deployment in _suite_deployments(objects).items():
        if name == "gateway":
            continue
        (migrate,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert migrate["command"][-1] == "migrate", name
        url = next(entry for entry in migrate["env"] if entry["name"].endswith("_DATABASE_URL"))
        # migrations go straight to the primary, never through the transaction pooler
        assert url["valueFrom"]["secretKeyRef"]["key"] == "uri", name


def test_broker_users_are_the_ones_deploy_broker_users_makes(objects: list[dict[str, Any]]) -> None:
    users, permissions, topic = (_named(objects, kind) for kind in ("User", "Permission", "TopicPermission"))
    assert set(users) == {*(user.name for user in service_users("events")), "console"}
    for user in service_users("events"):
        assert users[user.name]["spec"]["importCredentialsSecret"] == {"name": f"broker-{user.name}"}
        assert permissions[user.name]["spec"]["userReference"] == {"name": user.name}
        assert permissions[user.name]["spec"]["permissions"] == {"configure": user.configure, "write": user.write, "read": user.read}
        assert topic[user.name]["spec"]["permissions"] == {"exchange": "events", "write": user.topic_write, "read": ".*"}
    assert users["console"]["spec"]["tags"] == ["monitoring"]
    assert permissions["console"]["spec"]["permissions"] == {"configure": "^$", "write": "^$", "read": "^$"}


def test_consumers_scale_on_their_queues_and_the_request_driven_on_cpu(objects: list[dict[str, Any]]) -> None:
    scaled = _named(objects, "ScaledObject")
    assert {name: item["spec"]["scaleTargetRef"]["name"] for name, item in scaled.items()} == {
        "reports": "reports",
        "notifications": "notifications",
    }
    for item in scaled.values():
        for trigger in item["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            assert trigger["authenticationRef"] == {"name": "rabbitmq-queue-depth"}
            assert trigger["metadata"]["queueName"].startswith(item["metadata"]["name"] + ".")
    autoscalers = _named(objects, "HorizontalPodAutoscaler")
    assert {name: item["spec"]["metrics"][0]["resource"]["name"] for name, item in autoscalers.items()} == {
        "gateway": "cpu",
        "orders": "cpu",
    }
    for name in ("gateway", "orders", "reports", "notifications"):
        assert "replicas" not in _suite_deployments(objects)[name]["spec"], f"{name}: its autoscaler owns the replica count"


def test_only_the_gateway_takes_traffic_from_outside(objects: list[dict[str, Any]]) -> None:
    (ingress,) = _named(objects, "Ingress").values()
    backends = {path["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends == {"gateway"}
    policies = _named(objects, "NetworkPolicy")
    deny = policies["suite-default-deny"]["spec"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "order-suite"}}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert ("ingress" in deny, "egress" in deny) == (False, False)
    open_to_anyone = [name for name, policy in policies.items() for rule in policy["spec"].get("ingress", []) if "from" not in rule]
    assert open_to_anyone == ["gateway"]
    for service in ("orders", "reports", "scheduler", "notifications"):
        reached = [
            selector.get("podSelector", {}).get("matchLabels", {})
            for rule in policies[service]["spec"]["egress"]
            for selector in rule.get("to", [])
        ]
        databases = {labels["cnpg.io/cluster"] for labels in reached if "cnpg.io/cluster" in labels}
        assert databases == {f"{service}-db"}, service
        assert {"app.kubernetes.io/name": "rabbitmq"} in reached, service
    for name, deployment in _suite_deployments(objects).items():
        assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "order-suite", name


def test_prod_spreads_replicas_and_budgets_disruptions() -> None:
    objects = list(_render("prod", _kubectl()))
    budgets = _named(objects, "PodDisruptionBudget")
    deployments = _suite_deployments(objects)
    assert set(budgets) == set(deployments)
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        term = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
        assert term["labelSelector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
        assert budgets[name]["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
    assert _named(objects, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3
    assert {name: item["spec"]["instances"] for name, item in _named(objects, "Cluster").items()} == {
        f"{service}-db": 3 for service in ("orders", "reports", "scheduler", "notifications")
    }
    assert {(item["spec"]["minSyncReplicas"], item["spec"]["maxSyncReplicas"]) for item in _named(objects, "Cluster").values()} == {(1, 1)}
    assert {item["spec"]["replicas"] for name, item in deployments.items() if "replicas" in item["spec"]} == {2, 3}


def test_dev_runs_one_of_everything() -> None:
    objects = list(_render("dev", _kubectl()))
    assert _named(objects, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 1
    assert {(item["spec"]["instances"], item["spec"]["maxSyncReplicas"]) for item in _named(objects, "Cluster").values()} == {(1, 0)}
    assert {item["spec"].get("replicas", 1) for item in _named(objects, "Deployment").values()} == {1}
    assert {item["spec"]["minReplicas"] for item in _named(objects, "HorizontalPodAutoscaler").values()} == {1}
    assert {item["spec"]["minReplicaCount"] for item in _named(objects, "ScaledObject").values()} == {1}
    assert _named(objects, "ConfigMap")["suite-config"]["data"]["NOTIFICATIONS_SMTP_HOST"] == "mailpit"
