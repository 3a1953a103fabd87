"""Cross-references of the deployment files that no schema checks (scripts/deploy-check.sh runs
the schemas): names one manifest gives and another uses, selectors and the labels they select,
secrets and the files the processes read. Prints each problem; exits 1 if there is one."""
import sys
from pathlib import Path

import yaml

root = Path(__file__).resolve().parent.parent
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def kubernetes():
    docs = []
    for path in sorted((root / "deploy/kubernetes").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                docs.append((path.relative_to(root), doc))
    by_kind = {}
    for path, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = (path, doc)
    deployments = by_kind.get("Deployment", {})
    secrets = by_kind.get("Secret", {})
    configmaps = by_kind.get("ConfigMap", {})

    def selects(selector, where):
        matching = [n for n, (_, d) in deployments.items()
                    if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        if not matching:
            problem(where, f"selector {selector} selects no Deployment's pods")

    for name, (path, d) in deployments.items():
        spec = d["spec"]
        labels = spec["template"]["metadata"]["labels"]
        if not spec["selector"]["matchLabels"].items() <= labels.items():
            problem(path, f"Deployment {name}: its selector does not select its own pods")
        pod = spec["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume and volume["secret"]["secretName"] not in secrets:
                problem(path, f"Deployment {name}: no Secret {volume['secret']['secretName']}")
        for container in pod["containers"]:
            if container["image"] not in ("gantry-api:local", "gantry-worker:local"):
                problem(path, f"{name}: unexpected image {container['image']}")
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref and ref not in configmaps:
                    problem(path, f"{name}: no ConfigMap {ref}")
    for kind in ("Service", "PodDisruptionBudget"):
        for name, (path, d) in by_kind.get(kind, {}).items():
            selector = d["spec"]["selector"]
            selects(selector.get("matchLabels", selector), f"{path} {kind} {name}")
    for name, (path, d) in by_kind.get("HorizontalPodAutoscaler", {}).items():
        if d["spec"]["scaleTargetRef"]["name"] not in deployments:
            problem(path, f"HPA {name} scales no Deployment")
        for metric in d["spec"]["metrics"]:
            if metric["type"] == "External":
                queue = metric["external"]["metric"]["selector"]["matchLabels"].get("queue")
                if queue != "gantry.steps":
                    problem(path, f"HPA {name} does not scale on gantry.steps but {queue}")
    auths = by_kind.get("TriggerAuthentication", {})
    for name, (path, d) in by_kind.get("ScaledObject", {}).items():
        if d["spec"]["scaleTargetRef"]["name"] not in deployments:
            problem(path, f"ScaledObject {name} scales no Deployment")
        for trigger in d["spec"]["triggers"]:
            if trigger["type"] != "rabbitmq" or trigger["metadata"].get("queueName") != "gantry.steps":
                problem(path, f"ScaledObject {name}: a trigger not on RabbitMQ's gantry.steps")
            auth = trigger.get("authenticationRef", {}).get("name")
            if auth not in auths:
                problem(path, f"ScaledObject {name}: no TriggerAuthentication {auth}")
    for name, (path, d) in auths.items():
        for ref in d["spec"]["secretTargetRef"]:
            secret = secrets.get(ref["name"])
            if not secret or ref["key"] not in secret[1].get("stringData", {}):
                problem(path, f"TriggerAuthentication {name}: no key {ref['key']} in Secret {ref['name']}")
    # The _FILE variables name files of the mounted Secret.
    for name, (path, d) in configmaps.items():
        for key, value in d.get("data", {}).items():
            if key.endswith("_FILE"):
                file = Path(value)
                if str(file.parent) != "/run/secrets/gantry" or not any(
                        file.name in s[1].get("stringData", {}) for s in secrets.values()):
                    problem(path, f"ConfigMap {name}: {key} names {value}, no key of a mounted Secret")
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "Job", "ConfigMap", "Secret",
                 "HorizontalPodAutoscaler", "ScaledObject"):
        if kind not in by_kind:
            problem("deploy/kubernetes", f"no {kind}")
    return len(docs)


def compose():
    path = root / "deploy/compose/compose.yaml"
    doc = yaml.safe_load(path.read_text())
    declared = set(doc.get("secrets", {}))
    services = doc["services"]
    for name, service in services.items():
        used = set()
        for secret in service.get("secrets", []):
            source = secret if isinstance(secret, str) else secret["source"]
            used.add(source)
            if source not in declared:
                problem(path.name, f"service {name} uses undeclared secret {source}")
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                if Path(value).name not in used:
                    problem(path.name, f"service {name}: {key} names a secret it is not given")
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problem(path.name, f"service {name} depends on unknown {dependency}")
    rabbit = [n for n in services if n.startswith("rabbitmq-")]
    if len(rabbit) != 3:
        problem(path.name, f"{len(rabbit)} RabbitMQ nodes, not three")
    if services["api"].get("deploy", {}).get("replicas", 1) < 2:
        problem(path.name, "fewer than two api replicas")
    if "/var/run/docker.sock:/var/run/docker.sock" not in services["worker"].get("volumes", []):
        problem(path.name, "the workers do not get the Docker socket")
    haproxy = (root / "deploy/compose/haproxy.cfg").read_text()
    if "api:3000" not in haproxy or not all(f"{n}:5672" in haproxy for n in rabbit):
        problem("haproxy.cfg", "does not balance the api replicas and every RabbitMQ node")
    return len(services)


manifests = kubernetes()
services = compose()
for line in problems:
    print(f"deploy-check: {line}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"deploy-check: {manifests} Kubernetes manifests and {services} compose services hold together")
